/** SMC source server actions (smc-api.md §5). Translation only: the rules are in src/migration/source-servers.ts. */
import { Type } from 'typebox';
import { deepFreeze } from '../../../core/deep-freeze.ts';
import { type SourceServerView, deleteSourceServer, describeSourceServers, modifySourceServerAttribute } from '../../../migration/source-servers.ts';
import { popAction } from '../action-registry.ts';
import { rememberJsonText } from '../json-text.ts';
import { idList, pageParams, pageWire, pascalKeys, tagFilters, tagList, tagsWire, text } from './smc-wire.ts';

const sourceArn = (account: string, sourceId: string): string => `acs:smc:*:${account}:sourceserver/${sourceId}`;

function partsWire(parts: readonly object[]) {
  return parts.map((p) => pascalKeys(p));
}

const nestedSourceFields: ReadonlySet<string> = new Set(['systemDiskParts', 'dataDisks', 'disks', 'tags']);

function sourceWire(s: SourceServerView): Record<string, unknown> {
  const wire = pascalKeys(s, nestedSourceFields);
  wire['SystemDiskParts'] = { SystemDiskPart: partsWire(s.systemDiskParts) };
  wire['DataDisks'] = { DataDisk: s.dataDisks.map((d) => ({ Index: d.index, Path: d.path, Size: d.size, Parts: { Part: partsWire(d.parts) } })) };
  wire['Disks'] = {
    System: { Size: s.disks.system.size, Offset: s.disks.system.offset, Parts: { Part: partsWire(s.disks.system.parts) } },
    Data: { Data: s.disks.data.map((d) => ({ Size: d.size, Offset: d.offset, Parts: { Part: partsWire(d.parts) } })) },
  };
  wire['Tags'] = tagsWire(s.tags);
  return wire;
}

// A view stays the same object while its source is unchanged (src/migration remembers it), and
// so do its wire form and that form's JSON text, which are made only for a new view.
const wireOfView = new WeakMap<SourceServerView, Record<string, unknown>>();

function rememberedWire(view: SourceServerView): Record<string, unknown> {
  let wire = wireOfView.get(view);
  if (wire === undefined) {
    wire = rememberJsonText(deepFreeze(sourceWire(view)));
    wireOfView.set(view, wire);
  }
  return wire;
}

export const sourceServerActions = [
  popAction({
    product: 'smc',
    name: 'DescribeSourceServers',
    summary: 'List source servers registered by agents, with paging and filters',
    params: Type.Object({
      SourceId: idList,
      JobId: text(128),
      Name: text(),
      State: text(32),
      WorkgroupId: text(128),
      RelatedJobType: idList,
      ResourceGroupId: text(128),
      Tag: tagList,
      ...pageParams,
    }),
    handle: async (ctx, p) => {
      const page = await describeSourceServers(ctx, {
        sourceIds: p.SourceId,
        jobId: p.JobId,
        name: p.Name,
        state: p.State,
        workgroupId: p.WorkgroupId,
        relatedJobTypes: p.RelatedJobType,
        resourceGroupId: p.ResourceGroupId,
        tags: tagFilters(p.Tag),
        pageNumber: p.PageNumber,
        pageSize: p.PageSize,
      });
      return pageWire(page, 'SourceServers', 'SourceServer', rememberedWire);
    },
  }),
  popAction({
    product: 'smc',
    name: 'ModifySourceServerAttribute',
    params: Type.Object({ SourceId: Type.String({ minLength: 1, maxLength: 128 }), Name: text(), Description: text(1024) }),
    resources: (p, account) => [sourceArn(account, p.SourceId)],
    handle: async (ctx, p) => {
      await modifySourceServerAttribute(ctx, p.SourceId, { name: p.Name, description: p.Description });
      return {};
    },
  }),
  popAction({
    product: 'smc',
    name: 'DeleteSourceServer',
    params: Type.Object({ SourceId: Type.String({ minLength: 1, maxLength: 128 }), Force: Type.Optional(Type.Boolean()) }),
    resources: (p, account) => [sourceArn(account, p.SourceId)],
    handle: async (ctx, p) => {
      await deleteSourceServer(ctx, p.SourceId, p.Force ?? false);
      return {};
    },
  }),
];
