import { createHash } from 'node:crypto';
import type { CommandAnswer, ReplicateCommand, TreePartRequest } from '../core/agent-protocol.ts';
import { AppError } from '../core/errors.ts';
import type { SourceServerTable } from '../store/schema-smc.ts';
import { reportProgress } from './agent-commands.ts';
import type { ImageStore } from './image-store.ts';
import type { ServiceContext } from './service-context.ts';

/** Largest piece of a tar stream one request may carry. */
export const maxTreePartBytes = 512 * 1024;

/**
 * POST …/tree: a piece of a fileTree command's tar stream (ContainerImage). It is staged as the
 * run's disk 0 at its offset, so a piece sent twice (an agent that restarted) lands in the same place.
 */
export async function receiveTreePart(ctx: ServiceContext, store: ImageStore, source: SourceServerTable, commandId: string, part: TreePartRequest): Promise<CommandAnswer> {
  const command = await ctx.database.db.selectFrom('agent_commands').selectAll().where('id', '=', commandId).where('source_id', '=', source.id).executeTakeFirst();
  if (command === undefined) throw new AppError('AgentCommandNotFound', { commandId });
  if (command.state !== 'pending' && command.state !== 'delivered') return { cancelled: true };
  if ((JSON.parse(command.payload) as ReplicateCommand).target !== 'fileTree') {
    throw new AppError('InvalidParameter', { name: 'commandId', reason: `command ${commandId} sends disks, not a file tree; send its chunks instead` });
  }
  const data = Buffer.from(part.dataBase64, 'base64');
  if (data.length > maxTreePartBytes) throw new AppError('InvalidParameter', { name: 'dataBase64', reason: `a piece holds at most ${maxTreePartBytes} bytes` });
  if (createHash('sha256').update(data).digest('hex') !== part.sha256) {
    throw new AppError('InvalidParameter', { name: 'sha256', reason: `the piece at ${part.offsetBytes} does not match its checksum; send it again` });
  }
  await store.writeChunk(command.run_id, 0, part.offsetBytes, data);
  return reportProgress(ctx, source, commandId, part.percent);
}
