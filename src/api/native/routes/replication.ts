/**
 * Replication progress and image export for the CLI (`ferry jobs watch`, `ferry image export`):
 * a job's runs with their transfer counters, an image's disks, each disk's chunk manifest and its
 * data chunks as one stream.
 */
import { Type } from 'typebox';
import { describeImage, imageDiskData, imageDiskManifest } from '../../../migration/image-export.ts';
import { fileImageStore } from '../../../migration/image-store.ts';
import { replicationProgress } from '../../../migration/replication-progress.ts';
import type { NativeRoutes } from '../native-door.ts';

const Transfer = Type.Object({
  jobId: Type.String(),
  runId: Type.String(),
  outcome: Type.String(),
  bytesTotal: Type.Number(),
  bytesDone: Type.Number(),
  bytesReceived: Type.Number(),
  chunksReceived: Type.Number(),
  rateBytesPerSec: Type.Number(),
  progressAtMs: Type.Union([Type.Number(), Type.Null()]),
  etaSeconds: Type.Union([Type.Number(), Type.Null()]),
  proofs: Type.Record(Type.String(), Type.String()),
  transferMs: Type.Union([Type.Number(), Type.Null()]),
});

const diskParams = Type.Object({ imageId: Type.String({ maxLength: 64 }), diskIndex: Type.Integer({ minimum: 0, maximum: 16 }) });

export const replicationRoutes: NativeRoutes = (scope, deps) => {
  const images = fileImageStore(deps.runtime.dataDir);

  scope.get(
    '/replication-jobs/:jobId/progress',
    {
      schema: {
        tags: ['replication'],
        summary: 'A replication job\'s state and Progress, with each run\'s transfer: bytes done and total, bytes received, rate, ETA, proofs',
        params: Type.Object({ jobId: Type.String({ maxLength: 64 }) }),
        response: { 200: Type.Object({ jobId: Type.String(), state: Type.String(), progress: Type.Number(), imageId: Type.String(), errorCode: Type.String(), runs: Type.Array(Transfer) }) },
      },
    },
    async (request) => {
      deps.authorize(request, 'DescribeReplicationJobs');
      return replicationProgress(deps.context(request), request.params.jobId);
    },
  );

  scope.get(
    '/images/:imageId',
    {
      schema: {
        tags: ['images'],
        summary: 'An image built by a replication run: its disks, their sizes and proofs',
        params: Type.Object({ imageId: Type.String({ maxLength: 64 }) }),
        response: {
          200: Type.Object({ imageId: Type.String(), name: Type.String(), jobId: Type.String(), runId: Type.String(), disks: Type.Array(Type.Object({ index: Type.Integer(), sizeBytes: Type.Number(), proof: Type.String() })) }),
        },
      },
    },
    async (request) => {
      deps.authorize(request, 'ExportImage');
      return describeImage(deps.context(request), images, request.params.imageId);
    },
  );

  scope.get(
    '/images/:imageId/disks/:diskIndex/manifest',
    { schema: { tags: ['images'], summary: 'The chunk manifest of an image\'s disk (binary, src/dataplane/manifest.ts)', params: diskParams } },
    async (request, reply) => {
      deps.authorize(request, 'ExportImage');
      const manifest = await imageDiskManifest(deps.context(request), images, request.params.imageId, request.params.diskIndex);
      return reply.type('application/octet-stream').send(manifest.encode());
    },
  );

  scope.get(
    '/images/:imageId/disks/:diskIndex/data',
    { schema: { tags: ['images'], summary: 'The data chunks of an image\'s disk in index order, zero chunks left out (the manifest places them)', params: diskParams } },
    async (request, reply) => {
      deps.authorize(request, 'ExportImage');
      const { imageId, diskIndex } = request.params;
      const manifest = await imageDiskManifest(deps.context(request), images, imageId, diskIndex);
      return reply.type('application/octet-stream').send(await imageDiskData(images, imageId, diskIndex, manifest));
    },
  );
};
