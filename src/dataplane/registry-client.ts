/**
 * A small client of the Docker Registry HTTP API v2, enough to push one image: blobs by monolithic
 * upload (POST an upload, PUT its bytes with their digest), skipped when the registry has them, then
 * the manifest under its tag. Credentials in the registry URL (`https://user:pass@host`) go as Basic
 * auth, or buy a Bearer token when the registry asks for one (WWW-Authenticate: Bearer realm=...).
 */
import { createReadStream } from 'node:fs';
import { type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type OciDescriptor, ociMediaTypes, sha256Digest } from './oci-image.ts';

/** Why a push failed: the registry could not be reached, or it answered with a refusal. */
export class RegistryError extends Error {
  constructor(
    readonly kind: 'unreachable' | 'refused',
    /** The registry's HTTP status; 0 when it did not answer. */
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

type Body = { readonly data: Buffer } | { readonly path: string; readonly size: number };

/** Idle time after which a registry that stopped answering counts as unreachable, in ms. */
const idleTimeoutMs = 30_000;

function send(method: string, url: URL, headers: Record<string, string>, body: Body | undefined, signal: AbortSignal | undefined): Promise<Answer> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const length = body === undefined ? 0 : 'data' in body ? body.data.length : body.size;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, 'content-length': String(length) }, timeout: idleTimeoutMs, ...(signal === undefined ? {} : { signal }) }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer for ${idleTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => reject(err));
    if (body === undefined) req.end();
    else if ('data' in body) req.end(body.data);
    else {
      const file = createReadStream(body.path, { highWaterMark: 1024 * 1024 });
      file.on('error', (err) => req.destroy(err));
      file.pipe(req);
    }
  });
}

/** The registry's own words from an error body (`{"errors":[{"code","message"}]}`), else the status text. */
function refusal(answer: Answer): string {
  try {
    const errors = (JSON.parse(answer.text) as { errors?: { code?: string; message?: string }[] }).errors ?? [];
    if (errors.length > 0) return errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  } catch {
    // Not JSON: the start of the body says enough.
  }
  return answer.text.trim().slice(0, 200) || `HTTP ${answer.status}`;
}

function challengeParams(header: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const m of header.matchAll(/(\w+)="([^"]*)"/g)) params.set(m[1] ?? '', m[2] ?? '');
  return params;
}

export interface PushInput {
  /** e.g. `http://127.0.0.1:5000`, `https://user:pass@registry.example`. */
  readonly registryUrl: string;
  /** The repository path, e.g. `ns/repo`. */
  readonly repository: string;
  readonly tag: string;
  readonly config: Buffer;
  /** Layer blobs, each in a file. */
  readonly layers: readonly (OciDescriptor & { readonly path: string })[];
  readonly manifest: Buffer;
  readonly signal?: AbortSignal;
}

export interface PushResult {
  /** Digest of the manifest as pushed: the image's content address. */
  readonly manifestDigest: string;
  /** host[:port]/repository:tag */
  readonly reference: string;
  /** Blobs the registry already had. */
  readonly blobsSkipped: number;
}

/** The client of one registry and repository. */
class RegistrySession {
  readonly #base: URL;
  readonly #repository: string;
  readonly #signal: AbortSignal | undefined;
  /** Basic credentials from the registry URL, for the registry itself or its token service. */
  readonly #basic: string | undefined;
  #authorization: string | undefined;

  constructor(registryUrl: string, repository: string, signal: AbortSignal | undefined) {
    const base = new URL(registryUrl);
    this.#basic = base.username === '' ? undefined : `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`;
    this.#authorization = this.#basic;
    base.username = '';
    base.password = '';
    this.#base = base;
    this.#repository = repository;
    this.#signal = signal;
  }

  get host(): string {
    return this.#base.host;
  }

  url(path: string): URL {
    return new URL(`/v2/${this.#repository}/${path}`, this.#base);
  }

  /** One call; on a Bearer challenge, buy a token once and call again. Network failures become `unreachable`. */
  async call(method: string, url: URL, headers: Record<string, string>, body?: Body): Promise<Answer> {
    const attempt = (): Promise<Answer> =>
      send(method, url, { ...headers, ...(this.#authorization === undefined ? {} : { authorization: this.#authorization }) }, body, this.#signal).catch((err: unknown) => {
        if (this.#signal?.aborted === true) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        throw new RegistryError('unreachable', 0, `${method} ${url.origin}${url.pathname}: ${code ?? ''} ${err instanceof Error ? err.message : String(err)}`.trim());
      });
    let answer = await attempt();
    const challenge = String(answer.headers['www-authenticate'] ?? '');
    if (answer.status === 401 && /^Bearer /i.test(challenge)) {
      await this.#buyToken(challenge);
      answer = await attempt();
    }
    return answer;
  }

  async #buyToken(challenge: string): Promise<void> {
    const params = challengeParams(challenge);
    const realm = new URL(params.get('realm') ?? '');
    if (params.has('service')) realm.searchParams.set('service', params.get('service') ?? '');
    realm.searchParams.set('scope', params.get('scope') ?? `repository:${this.#repository}:pull,push`);
    const answer = await send('GET', realm, this.#basic === undefined ? {} : { authorization: this.#basic }, undefined, this.#signal).catch((err: unknown) => {
      throw new RegistryError('unreachable', 0, `token service ${realm.origin}: ${err instanceof Error ? err.message : String(err)}`);
    });
    if (answer.status !== 200) throw new RegistryError('refused', answer.status, `the token service ${realm.origin} refused a push token: ${refusal(answer)}`);
    const token = JSON.parse(answer.text) as { token?: string; access_token?: string };
    this.#authorization = `Bearer ${token.token ?? token.access_token ?? ''}`;
  }

  /** Upload a blob unless the registry has it; returns whether it was skipped. */
  async pushBlob(digest: string, body: Body): Promise<boolean> {
    const head = await this.call('HEAD', this.url(`blobs/${digest}`), {});
    if (head.status === 200) return true;
    const started = await this.call('POST', this.url('blobs/uploads/'), {});
    if (started.status !== 202 || started.headers.location === undefined) {
      throw new RegistryError('refused', started.status, `the registry refused to start an upload to ${this.#repository}: ${refusal(started)}`);
    }
    const put = new URL(started.headers.location, this.#base);
    put.searchParams.set('digest', digest);
    const done = await this.call('PUT', put, { 'content-type': 'application/octet-stream' }, body);
    if (done.status !== 201) throw new RegistryError('refused', done.status, `the registry refused blob ${digest} of ${this.#repository}: ${refusal(done)}`);
    return false;
  }
}

/** Push config, layers and manifest; the manifest goes last, so a tag only ever names a complete image. */
export async function pushImage(input: PushInput): Promise<PushResult> {
  const session = new RegistrySession(input.registryUrl, input.repository, input.signal);
  const reference = `${session.host}/${input.repository}:${input.tag}`;
  const ping = await session.call('GET', new URL('/v2/', session.url('')), {});
  if (ping.status !== 200) throw new RegistryError('refused', ping.status, `${session.host} does not serve the registry API v2 to Ferry: ${refusal(ping)}`);
  let blobsSkipped = 0;
  for (const layer of input.layers) if (await session.pushBlob(layer.digest, { path: layer.path, size: layer.size })) blobsSkipped += 1;
  if (await session.pushBlob(sha256Digest(input.config), { data: input.config })) blobsSkipped += 1;
  const answer = await session.call('PUT', session.url(`manifests/${encodeURIComponent(input.tag)}`), { 'content-type': ociMediaTypes.manifest }, { data: input.manifest });
  if (answer.status !== 201) throw new RegistryError('refused', answer.status, `the registry refused the manifest of ${reference}: ${refusal(answer)}`);
  const manifestDigest = sha256Digest(input.manifest);
  const echoed = answer.headers['docker-content-digest'];
  if (typeof echoed === 'string' && echoed !== manifestDigest) throw new RegistryError('refused', answer.status, `the registry stored the manifest of ${reference} as ${echoed}, not ${manifestDigest}`);
  return { manifestDigest, reference, blobsSkipped };
}
