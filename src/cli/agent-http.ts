import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { type ApiCredentials, ApiError, callApi } from './api-client.ts';
import { agentApiPrefix, agentStreamPath, agentStreamProtocol } from '../core/agent-protocol.ts';
import type { RegisterRequest, RegisterResponse, StreamTicket } from '../core/agent-protocol.ts';
import { AgentApiError, type AgentApi, type AgentSession } from '../agent/agent-link.ts';

/** Server refusals become AgentApiError (the agent decides whether to retry); network trouble stays as it is. */
async function mapped<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ApiError) throw new AgentApiError(err.status, err.code, err.message);
    throw err;
  }
}

/** The unsigned activation call: the activation code in the body is the proof. */
async function activate(endpoint: string, request: RegisterRequest): Promise<RegisterResponse> {
  const response = await fetch(`${endpoint}${agentApiPrefix}/activate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
  const body = (await response.json().catch(() => ({}))) as { code?: string; message?: string };
  if (!response.ok) throw new AgentApiError(response.status, body.code ?? 'InternalError', `${body.code ?? response.status}: ${body.message ?? response.statusText}`);
  return body as RegisterResponse;
}

/**
 * Open a data-plane stream with a ticket: an HTTP/1.1 upgrade to `ferry-dataplane/1`, after which
 * the socket carries the data plane's frames. A refusal (an expired ticket, say) rejects with a
 * plain error, which the sender treats as a broken link and answers with a new ticket.
 */
function upgradeStream(endpoint: string, ticket: string, signal: AbortSignal): Promise<Duplex> {
  const url = new URL(`${endpoint}${agentStreamPath}`);
  url.searchParams.set('ticket', ticket);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers: { connection: 'Upgrade', upgrade: agentStreamProtocol }, signal });
    req.on('upgrade', (_response, socket, head) => {
      if (head.length > 0) socket.unshift(head);
      socket.setNoDelay(true);
      resolve(socket);
    });
    req.on('response', (response) => {
      response.resume();
      reject(new Error(`the server refused the data stream with HTTP ${response.statusCode ?? 0}`));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The agent's port over HTTP: the native API under /api/v1/agent, signed with ACS3-HMAC-SHA256 like
 * the CLI (callApi). `account` is the key to register with when there is no activation code.
 */
export function httpAgentApi(endpoint: string, account: Omit<ApiCredentials, 'endpoint'> | undefined): AgentApi {
  return {
    register: (request) => {
      if (request.accessTokenId !== undefined) return activate(endpoint, request);
      if (account === undefined) throw new AgentApiError(400, 'MissingParameter', 'Give --token-id and --token-code, or set FERRY_ACCESS_KEY_ID and FERRY_ACCESS_KEY_SECRET.');
      return mapped(() => callApi<RegisterResponse>({ endpoint, ...account }, 'POST', `${agentApiPrefix}/register`, request));
    },
    session: (credentials): AgentSession => {
      const creds = { endpoint, ...credentials };
      const commandPath = (commandId: string, what: string): string => `${agentApiPrefix}/commands/${encodeURIComponent(commandId)}/${what}`;
      return {
        heartbeat: (request) => mapped(() => callApi(creds, 'POST', `${agentApiPrefix}/heartbeat`, request)),
        commands: (waitMs, exclude) => mapped(() => callApi(creds, 'GET', `${agentApiPrefix}/commands`, undefined, { waitMs: String(waitMs), ...(exclude.length > 0 ? { exclude: exclude.join(',') } : {}) })),
        progress: (commandId, request) => mapped(() => callApi(creds, 'POST', commandPath(commandId, 'progress'), request)),
        openStream: async (commandId, request, signal) => {
          const { ticket } = await mapped(() => callApi<StreamTicket>(creds, 'POST', commandPath(commandId, 'streams'), request));
          return upgradeStream(endpoint, ticket, signal);
        },
        result: (commandId, request) => mapped(() => callApi(creds, 'POST', commandPath(commandId, 'result'), request)),
        treePart: (commandId, request) => mapped(() => callApi(creds, 'POST', commandPath(commandId, 'tree'), request)),
      };
    },
  };
}
