/** SMC tag actions (smc-api.md §5): ResourceType sourceserver or replicationjob. Translation only: the rules are in src/migration/tag-resources.ts. */
import { Type } from 'typebox';
import { listTagResources, tagResources, untagResources } from '../../../migration/tag-resources.ts';
import { popAction } from '../action-registry.ts';
import { idList, tagFilters, tagList, text } from './smc-wire.ts';

export const tagActions = [
  popAction({
    product: 'smc',
    name: 'ListTagResources',
    params: Type.Object({ ResourceType: text(64), ResourceId: idList, Tag: tagList, NextToken: text(1024) }),
    handle: async (ctx, p) => {
      const page = await listTagResources(ctx, { resourceType: p.ResourceType, resourceIds: p.ResourceId, tags: tagFilters(p.Tag), nextToken: p.NextToken });
      return {
        NextToken: page.nextToken,
        TagResources: { TagResource: page.tagResources.map((t) => ({ ResourceId: t.resourceId, ResourceType: t.resourceType, TagKey: t.tagKey, TagValue: t.tagValue })) },
      };
    },
  }),
  popAction({
    product: 'smc',
    name: 'TagResources',
    params: Type.Object({ ResourceType: text(64), ResourceId: idList, Tag: tagList }),
    handle: async (ctx, p) => {
      await tagResources(ctx, { resourceType: p.ResourceType, resourceIds: p.ResourceId, tags: tagFilters(p.Tag) });
      return {};
    },
  }),
  popAction({
    product: 'smc',
    name: 'UntagResources',
    params: Type.Object({ ResourceType: text(64), ResourceId: idList, TagKey: Type.Optional(Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 1000 })), All: Type.Optional(Type.Boolean()) }),
    handle: async (ctx, p) => {
      await untagResources(ctx, { resourceType: p.ResourceType, resourceIds: p.ResourceId, tagKeys: p.TagKey, all: p.All });
      return {};
    },
  }),
];
