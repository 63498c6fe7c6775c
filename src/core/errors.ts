/**
 * One error type for everything a user can see. Each code in the catalogue carries
 * its HTTP status, the Alibaba `Code` string, the Huawei `error_code` and a message
 * template whose `{name}` slots are filled from the error's params.
 */

export interface ErrorSpec {
  readonly httpStatus: number;
  readonly alibabaCode: string;
  readonly huaweiCode: string;
  readonly message: string;
}

function spec(httpStatus: number, alibabaCode: string, huaweiCode: string, message: string): ErrorSpec {
  return { httpStatus, alibabaCode, huaweiCode, message };
}

export const errorCatalogue = {
  InternalError: spec(500, 'InternalError', 'Common.0500', 'The request failed on the server. Quote request id {requestId} when you report it.'),
  ServiceUnavailable: spec(503, 'ServiceUnavailable', 'Common.0503', 'The service is shutting down or overloaded; retry in a few seconds.'),
  InvalidParameter: spec(400, 'InvalidParameter', 'Common.0002', 'The parameter {name} is invalid: {reason}.'),
  MissingParameter: spec(400, 'MissingParameter', 'Common.0001', 'The required parameter {name} is missing.'),
  NotFound: spec(404, 'NotFound', 'Common.0404', 'The {resource} {id} does not exist.'),
  Conflict: spec(409, 'OperationConflict', 'Common.0409', '{reason}'),
  InvalidAccessKeyIdNotFound: spec(404, 'InvalidAccessKeyId.NotFound', 'APIGW.0301', 'Specified access key is not found.'),
  AccessKeyDisabled: spec(403, 'Forbidden.AccessKeyDisabled', 'APIGW.0301', 'The access key {accessKeyId} is disabled.'),
  MasterKeyMismatch: spec(500, 'InternalError', 'Common.0500', 'The master key does not match the one this database was created with; set FERRY_MASTER_KEY or use the data dir that created it.'),
  LeaseLost: spec(409, 'OperationConflict', 'Common.0409', 'Job {jobId} is no longer leased by this worker (fencing token {token}); its write was refused.'),
  JobNotFound: spec(404, 'NotFound', 'Common.0404', 'The job {jobId} does not exist.'),
  JobStateConflict: spec(409, 'OperationConflict', 'Common.0409', 'The job {jobId} is {state}; {action} is not allowed in that state.'),
  UnknownJobKind: spec(400, 'InvalidParameter', 'Common.0002', 'No handler is registered for job kind {kind}.'),
  SignatureDoesNotMatch: spec(400, 'SignatureDoesNotMatch', 'APIGW.0301', 'Specified signature is not matched with our calculation. server string to sign is:{stringToSign}'),
  IncompleteSignature: spec(400, 'IncompleteSignature', 'APIGW.0301', 'The request signature does not conform to the standard: {reason}.'),
  InvalidTimeStampExpired: spec(400, 'InvalidTimeStamp.Expired', 'APIGW.0301', 'Specified time stamp or date value is expired: {value} is more than 15 minutes from the server time {serverTime}; check the client clock.'),
  InvalidTimeStampFormat: spec(400, 'InvalidTimeStamp.Format', 'APIGW.0301', 'Specified time stamp {value} is not in the format yyyy-MM-ddTHH:mm:ssZ (UTC).'),
  SignatureNonceUsed: spec(400, 'SignatureNonceUsed', 'APIGW.0301', 'Specified signature nonce was used already; send a fresh nonce with every request.'),
  InvalidActionNotFound: spec(404, 'InvalidAction.NotFound', 'APIGW.0101', 'Specified api is not found, please check your url and method: {action} (version {version}).'),
  UnsupportedHttpMethod: spec(403, 'UnsupportedHTTPMethod', 'APIGW.0101', 'The HTTP method {method} is not supported; use GET or POST.'),
  ThrottlingUser: spec(400, 'Throttling.User', 'APIGW.0308', 'Request was denied due to user flow control: more than {ratePerSecond} requests per second for this access key.'),
  ThrottlingApi: spec(400, 'Throttling.Api', 'APIGW.0308', 'Request was denied due to api flow control: more than {ratePerSecond} requests per second to {action}.'),
  IdempotentParameterMismatch: spec(400, 'IdempotentParameterMismatch', 'Common.0409', 'The ClientToken {clientToken} was used before with other parameters; use a new token for a new request.'),
  IdempotentRequestInProgress: spec(409, 'OperationConflict', 'Common.0409', 'A request with ClientToken {clientToken} is still being processed; retry in a moment.'),
  ForbiddenRam: spec(403, 'Forbidden.RAM', 'APIGW.0305', 'User not authorized to operate on the specified resource: {action} on {resource} ({denial}).'),
  InvalidPolicy: spec(400, 'InvalidParameter', 'Common.0002', 'The policy document is invalid: {reason}.'),
  AccessTokenNotFound: spec(404, 'InvalidAccessTokenId.NotFound', 'Common.0404', 'The activation code {accessTokenId} does not exist in this account.'),
  AccessTokenInvalid: spec(403, 'AccessToken.Invalid', 'APIGW.0301', 'The activation code {accessTokenId} is {reason}; create a new one with CreateAccessToken.'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

export type ErrorParams = Readonly<Record<string, string | number | boolean | undefined>>;

/** Fill `{name}` slots in a template; unknown slots stay visible so a missing param is noticed. */
export function formatMessage(template: string, params: ErrorParams): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => {
    const value = params[key];
    return value === undefined ? whole : String(value);
  });
}

export interface AppErrorOptions {
  /** Overrides the catalogue's Alibaba code, e.g. `InvalidParameter.SystemDiskSize`. */
  readonly alibabaCode?: string;
  /** Overrides the catalogue's Huawei code, e.g. `Ecs.0114`. */
  readonly huaweiCode?: string;
  /** Overrides the catalogue's HTTP status, e.g. ENS answering 400 for NoPermission. */
  readonly httpStatus?: number;
  readonly cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly params: ErrorParams;
  readonly httpStatus: number;
  readonly alibabaCode: string;
  readonly huaweiCode: string;

  constructor(code: ErrorCode, params: ErrorParams = {}, options: AppErrorOptions = {}) {
    const entry = errorCatalogue[code];
    super(formatMessage(entry.message, params), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.params = params;
    this.httpStatus = options.httpStatus ?? entry.httpStatus;
    this.alibabaCode = options.alibabaCode ?? entry.alibabaCode;
    this.huaweiCode = options.huaweiCode ?? entry.huaweiCode;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/** Map anything thrown to an AppError; unknown failures become InternalError carrying the request id. */
export function toAppError(err: unknown, requestId: string): AppError {
  if (isAppError(err)) return err;
  return new AppError('InternalError', { requestId }, { cause: err });
}
