/** SMC workgroup actions (smc-api.md §5). Translation only: the rules are in src/migration/workgroups.ts. */
import { Type } from 'typebox';
import {
  type WorkgroupView,
  associateSourceServers,
  createWorkgroup,
  deleteWorkgroup,
  describeWorkgroups,
  disassociateSourceServers,
  modifyWorkgroupAttribute,
} from '../../../migration/workgroups.ts';
import type { ServiceContext } from '../../../migration/service-context.ts';
import { popAction } from '../action-registry.ts';
import { idList, pageParams, pageWire, tagFilters, tagList, tagsWire, text } from './smc-wire.ts';

const workgroupArn = (account: string, workgroupId: string): string => `acs:smc:*:${account}:workgroup/${workgroupId}`;
const workgroupIdParam = Type.String({ minLength: 1, maxLength: 128 });

function workgroupWire(w: WorkgroupView): Record<string, unknown> {
  return {
    WorkgroupId: w.workgroupId,
    Name: w.name,
    Description: w.description,
    Status: w.status,
    Tags: tagsWire(w.tags),
    Warnings: { Warning: w.warnings.map((warning) => ({ WarningType: warning.warningType, SourceIds: { SourceId: warning.sourceIds } })) },
  };
}

/** AssociateSourceServers and DisassociateSourceServers: a workgroup and SourceId.N. */
function membership(name: string, change: (ctx: ServiceContext, workgroupId: string, sourceIds: readonly string[]) => Promise<void>) {
  return popAction({
    product: 'smc',
    name,
    params: Type.Object({ WorkgroupId: workgroupIdParam, SourceId: idList }),
    resources: (p, account) => [workgroupArn(account, p.WorkgroupId)],
    handle: async (ctx, p) => {
      await change(ctx, p.WorkgroupId, p.SourceId ?? []);
      return {};
    },
  });
}

export const workgroupActions = [
  popAction({
    product: 'smc',
    name: 'CreateWorkgroup',
    idempotent: true,
    params: Type.Object({ Name: text(), Description: text(1024), ClientToken: Type.Optional(Type.String({ maxLength: 64, pattern: '^[\\x20-\\x7E]*$' })), Tag: tagList }),
    handle: async (ctx, p) => {
      const created = await createWorkgroup(ctx, { name: p.Name, description: p.Description, tags: tagFilters(p.Tag) });
      return { WorkgroupId: created.workgroupId };
    },
  }),
  popAction({
    product: 'smc',
    name: 'DeleteWorkgroup',
    params: Type.Object({ WorkgroupId: workgroupIdParam }),
    resources: (p, account) => [workgroupArn(account, p.WorkgroupId)],
    handle: async (ctx, p) => {
      await deleteWorkgroup(ctx, p.WorkgroupId);
      return {};
    },
  }),
  popAction({
    product: 'smc',
    name: 'DescribeWorkgroups',
    params: Type.Object({ WorkgroupId: idList, Name: text(), Status: text(32), Tag: tagList, ...pageParams }),
    handle: async (ctx, p) => {
      const page = await describeWorkgroups(ctx, { workgroupIds: p.WorkgroupId, name: p.Name, status: p.Status, tags: tagFilters(p.Tag), pageNumber: p.PageNumber, pageSize: p.PageSize });
      return pageWire(page, 'Workgroups', 'Workgroup', workgroupWire);
    },
  }),
  popAction({
    product: 'smc',
    name: 'ModifyWorkgroupAttribute',
    params: Type.Object({ WorkgroupId: workgroupIdParam, Name: text(), Description: text(1024) }),
    resources: (p, account) => [workgroupArn(account, p.WorkgroupId)],
    handle: async (ctx, p) => {
      await modifyWorkgroupAttribute(ctx, p.WorkgroupId, { name: p.Name, description: p.Description });
      return {};
    },
  }),
  membership('AssociateSourceServers', associateSourceServers),
  membership('DisassociateSourceServers', disassociateSourceServers),
];
