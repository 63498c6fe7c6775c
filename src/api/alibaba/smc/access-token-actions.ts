import { Type } from 'typebox';
import { createAccessToken, deleteAccessToken, disableAccessToken, listAccessTokens } from '../../../migration/access-tokens.ts';
import { popAction } from '../action-registry.ts';

const tokenIdList = Type.Array(Type.String({ maxLength: 64 }), { maxItems: 50 });

export const accessTokenActions = [
  popAction({
    product: 'smc',
    name: 'CreateAccessToken',
    summary: 'Create an activation code that agents use to register source servers',
    params: Type.Object({
      Name: Type.Optional(Type.String({ maxLength: 128 })),
      Description: Type.Optional(Type.String({ maxLength: 256 })),
      Count: Type.Optional(Type.String({ maxLength: 10 })),
      TimeToLiveInDays: Type.Optional(Type.String({ maxLength: 10 })),
    }),
    handle: async (ctx, p) => {
      const created = await createAccessToken(ctx, { name: p.Name, description: p.Description, count: p.Count, timeToLiveInDays: p.TimeToLiveInDays });
      return { AccessTokenId: created.accessTokenId, AccessTokenCode: created.accessTokenCode };
    },
  }),
  popAction({
    product: 'smc',
    name: 'DeleteAccessToken',
    params: Type.Object({ AccessTokenId: Type.String({ minLength: 1, maxLength: 64 }) }),
    resources: (p, account) => [`acs:smc:*:${account}:accesstoken/${p.AccessTokenId}`],
    handle: async (ctx, p) => {
      await deleteAccessToken(ctx, p.AccessTokenId);
      return {};
    },
  }),
  popAction({
    product: 'smc',
    name: 'DisableAccessToken',
    params: Type.Object({ AccessTokenId: Type.String({ minLength: 1, maxLength: 64 }) }),
    resources: (p, account) => [`acs:smc:*:${account}:accesstoken/${p.AccessTokenId}`],
    handle: async (ctx, p) => {
      await disableAccessToken(ctx, p.AccessTokenId);
      return {};
    },
  }),
  popAction({
    product: 'smc',
    name: 'ListAccessTokens',
    params: Type.Object({
      AccessTokenId: Type.Optional(tokenIdList),
      Name: Type.Optional(Type.String({ maxLength: 128 })),
      Status: Type.Optional(Type.Union([Type.Literal('activated'), Type.Literal('unactivated'), Type.Literal('expired')])),
    }),
    handle: async (ctx, p) => {
      const tokens = await listAccessTokens(ctx, { ids: p.AccessTokenId, name: p.Name, status: p.Status });
      return {
        PageNumber: 1,
        PageSize: tokens.length,
        TotalCount: tokens.length,
        AccessTokens: {
          AccessToken: tokens.map((t) => ({
            AccessTokenId: t.accessTokenId,
            Name: t.name,
            Description: t.description,
            Count: String(t.count),
            RegisteredCount: String(t.registeredCount),
            TimeToLiveInDays: String(t.timeToLiveInDays),
            CreationTime: t.creationTime,
            Status: t.status,
          })),
        },
      };
    },
  }),
];
