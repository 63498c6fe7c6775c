/**
 * The agent route of ContainerImage runs (docs/agent-protocol.md): the tar stream of the source's
 * file tree, in pieces, signed with the agent's own key like the other agent routes.
 */
import { Type } from 'typebox';
import { agentApiPrefix } from '../../../core/agent-protocol.ts';
import { fileImageStore } from '../../../migration/image-store.ts';
import { requireAgentSource } from '../../../migration/source-registration.ts';
import { maxTreePartBytes, receiveTreePart } from '../../../migration/tree-upload.ts';
import type { NativeRoutes } from '../native-door.ts';

const prefix = agentApiPrefix.replace(/^\/api\/v1/, '');

export const agentTreeRoutes: NativeRoutes = (scope, deps) => {
  const images = fileImageStore(deps.runtime.dataDir);
  scope.post(
    `${prefix}/commands/:commandId/tree`,
    {
      schema: {
        tags: ['agent'],
        summary: 'A piece of the tar stream of the source file tree (TargetType ContainerImage), at its offset',
        params: Type.Object({ commandId: Type.String({ maxLength: 64 }) }),
        body: Type.Object({
          offsetBytes: Type.Integer({ minimum: 0 }),
          sha256: Type.String({ maxLength: 64 }),
          dataBase64: Type.String({ maxLength: Math.ceil(maxTreePartBytes / 3) * 4 }),
          percent: Type.Number({ minimum: 0, maximum: 100 }),
        }),
        response: { 200: Type.Object({ cancelled: Type.Boolean() }) },
      },
    },
    async (request) => {
      deps.authorize(request, 'AgentUploadChunk');
      const caller = deps.caller(request);
      const source = await requireAgentSource(deps.runtime.database, caller.accountId, caller.accessKeyId);
      return receiveTreePart(deps.context(request), images, source, request.params.commandId, request.body);
    },
  );
};
