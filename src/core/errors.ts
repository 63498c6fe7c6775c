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
  // SMC source servers, replication jobs, workgroups and tags (smc-api.md §6). The *.NotFound codes
  // for ids of this account's resources are our own choice (404): SMC documents none.
  SourceServerStateInvalid: spec(400, 'SourceServerState.Invalid', 'Common.0002', 'The specified source server status: {state} is invalid. This operation can only be performed in the following status: {allowed}.'),
  ReplicationJobInvalidStatus: spec(400, 'ReplicationJob.InvalidStatus', 'Common.0002', 'The specified replication job status: {status} is invalid. This operation can only be performed in the following status: {allowed}.'),
  SourceServerWithRunningJob: spec(400, 'SourceServer.WithRunningReplicationJob', 'Common.0002', 'The source server {sourceId} has the running replication job {jobId}; stop it with StopReplicationJob first.'),
  ReplicationJobRelated: spec(400, 'ReplicationJob.Related', 'Common.0002', 'The source server {sourceId} has related replication jobs: {jobIds}. Delete them first, or call DeleteSourceServer with Force=true.'),
  SourceServerNameDuplicate: spec(400, 'SourceServerName.Duplicate', 'Common.0002', 'The specified source server name {name} already exists; choose another name.'),
  ReplicationJobNameDuplicate: spec(400, 'ReplicationJobName.Duplicate', 'Common.0002', 'The specified replication job name {name} already exists; choose another name.'),
  ReplicationJobDataDiskIndexInvalid: spec(400, 'ReplicationJobDataDiskIndex.Invalid', 'Common.0002', 'The specified replication job contains data disk index {index} not found in source server {sourceId}; its data disk indexes are: {available}.'),
  DataDiskDuplicateIndex: spec(400, 'DataDisk.DuplicateIndex', 'Common.0002', 'The data disk index {index} is given more than once; give each DataDisk.N.Index once.'),
  VSwitchIdVpcIdMismatch: spec(400, 'VSwitchIdVpcId.Mismatch', 'Common.0002', 'The specified VSwitchId {vSwitchId} and VpcId {vpcId} does not match: the vSwitch is in {actualVpcId}.'),
  QuotaExceededReplicationJob: spec(400, 'QuotaExceeded.ReplicationJob', 'Common.0002', 'The maximum number of replication jobs ({limit}) is exceeded. Delete jobs you no longer need, or submit a ticket to raise the quota.'),
  ImageNameUsedByReplicationJob: spec(400, 'ImageName.UsedByReplicationJob', 'Common.0002', 'The specified imageName: "{imageName}" was used by another replication job in the current region.'),
  InvalidOsMigrationTypeNotMatched: spec(400, 'InvalidOsMigrationType.NotMatched', 'Common.0002', 'The SourceOsType: {sourceOsType} and TargetOsType: {targetOsType} are not matched. The supported SourceOsType list is: {supported}.'),
  NumberExceedTags: spec(400, 'NumberExceed.Tags', 'Common.0002', 'At most {limit} tags are allowed {where}; there would be {count}.'),
  MissingParameterResourceType: spec(400, 'MissingParameter.ResourceType', 'Common.0001', 'The required parameter ResourceType is missing; use sourceserver or replicationjob.'),
  InvalidResourceTypeNotFound: spec(400, 'InvalidResourceType.NotFound', 'Common.0002', 'The ResourceType {resourceType} is not supported; use sourceserver or replicationjob.'),
  NumberExceedResourceIds: spec(400, 'NumberExceed.ResourceIds', 'Common.0002', 'At most {limit} ResourceId values are allowed; got {count}.'),
  DuplicateResourceId: spec(400, 'Duplicate.ResourceId', 'Common.0002', 'The ResourceId {resourceId} is given more than once.'),
  InvalidResourceIdNotFound: spec(400, 'InvalidResourceId.NotFound', 'Common.0002', 'The {resourceType} resources {resourceIds} do not exist in this account.'),
  InvalidParameterTagValue: spec(400, 'InvalidParameter.TagValue', 'Common.0002', 'Tag.{index}.Value is given without Tag.{index}.Key; give the key too.'),
  InvalidJobIdNotFound: spec(404, 'InvalidJobId.NotFound', 'Common.0404', 'The replication job {jobId} does not exist in this account.'),
  InvalidSourceIdNotFound: spec(404, 'InvalidSourceId.NotFound', 'Common.0404', 'The source server {sourceId} does not exist in this account.'),
  InvalidWorkgroupIdNotFound: spec(404, 'InvalidWorkgroupId.NotFound', 'Common.0404', 'The workgroup {workgroupId} does not exist in this account.'),
  InvalidVSwitchIdNotFound: spec(404, 'InvalidVSwitchId.NotFound', 'Common.0404', 'The vSwitch {vSwitchId} does not exist in region {regionId}.'),
  InvalidInstanceIdNotFound: spec(404, 'InvalidInstanceId.NotFound', 'Common.0404', 'The instance {instanceId} does not exist in region {regionId} of this account.'),
  InvalidInstanceTypeNotFound: spec(400, 'InvalidInstanceType.NotFound', 'Common.0002', 'The instance type {instanceType} is not available; pick one that the fleet offers.'),
  QuotaExceededWorkgroup: spec(400, 'QuotaExceeded.Workgroup', 'Common.0002', 'An account may have at most {limit} workgroups; delete one first.'),
  QuotaExceededWorkgroupSourceServer: spec(400, 'QuotaExceeded.WorkgroupSourceServer', 'Common.0002', 'A workgroup may hold at most {limit} source servers; {workgroupId} would hold {count}.'),
  WorkgroupNotEmpty: spec(400, 'Workgroup.NotEmpty', 'Common.0002', 'The workgroup {workgroupId} still holds source servers {sourceIds}; remove them with DisassociateSourceServers first.'),
  SourceServerInOtherWorkgroup: spec(400, 'SourceServer.InOtherWorkgroup', 'Common.0002', 'The source server {sourceId} already belongs to workgroup {workgroupId}; a source server is in at most one workgroup.'),
  AgentNotRegistered: spec(403, 'Forbidden.NotAgent', 'APIGW.0305', 'The access key {accessKeyId} is not the credential of a registered agent; agent routes take the key that registration returned.'),
  AgentCommandNotFound: spec(404, 'NotFound', 'Common.0404', 'The agent command {commandId} does not exist for this source server.'),
  // SMC ContainerImage and TargetInstance targets: reported as a run's ErrorCode and StatusInfo.
  ContainerRegistryNotConfigured: spec(400, 'ContainerRegistry.NotConfigured', 'Common.0002', 'No container registry is configured for ContainerImage jobs; start the server with --registry URL (or FERRY_REGISTRY_URL), then start the job again.'),
  ContainerRegistryUnreachable: spec(502, 'ContainerRegistry.Unreachable', 'Common.0500', 'The container registry {registry} could not be reached ({reason}); check that it runs and that --registry / FERRY_REGISTRY_URL points at it, then start the job again.'),
  ContainerRegistryPushRefused: spec(502, 'ContainerRegistry.PushRefused', 'Common.0500', 'The container registry refused the push of {reference} (HTTP {status}): {reason}. Check ContainerNamespace, ContainerRepository and ContainerTag against its naming rules, and the credentials in --registry.'),
  SourceServerFileTreeUnreadable: spec(400, 'SourceServer.FileTreeUnreadable', 'Common.0002', 'The agent could not read the file tree under its --root: {reason}. Give the agent read access to every file there, or another --root.'),
  InvalidImageIdNotFound: spec(404, 'InvalidImageId.NotFound', 'Common.0404', 'The image {imageId} does not exist in this account (or was retired by MaxNumberOfImageToKeep).'),
  ImageCheckFailed: spec(500, 'Image.CheckFailed', 'Common.0500', 'The exported image {imageId} failed its check: {reason}. Export it again; if it fails again, the image is damaged and its job must run again.'),
  ReplicationTransferFailed: spec(400, 'ReplicationJob.TransferFailed', 'Common.0002', 'The disk transfer between the agent and the server failed: {reason}. Run an agent of the same Ferry version as the server, then start the job again.'),
  ReplicationChecksumMismatch: spec(400, 'ReplicationJob.ChecksumMismatch', 'Common.0002', 'The image the server built does not match the source disk: {reason}. Start the job again; the run sends the disk anew.'),
  SourceServerFileTreeInvalid: spec(400, 'SourceServer.FileTreeInvalid', 'Common.0002', 'The file tree the agent sent is not a well-formed tar archive: {reason}. Run an agent of the same Ferry version as the server, then start the job again.'),
  TargetInstanceDiskMismatch: spec(400, 'TargetInstance.DiskMismatch', 'Common.0002', 'The instance {instanceId} cannot take source disk {diskIndex}: {reason}.'),
  // ENS system events (ens-api.md §7 documents InvalidParameter.<Field>; the field is set per error as the Alibaba code).
  EnsInvalidEventId: spec(400, 'InvalidParameter.EventId', 'Common.0002', 'The specified field EventId invalid: {reason}.'),
  EnsInvalidResourceId: spec(400, 'InvalidParameter.ResourceId', 'Common.0002', 'The specified field ResourceId invalid: {reason}.'),
  EnsInvalidOpsType: spec(400, 'InvalidParameter.OpsType', 'Common.0002', 'The specified field OpsType invalid: {reason}.'),
  EnsInvalidPlanTime: spec(400, 'InvalidParameter.PlanTime', 'Common.0002', 'The specified field PlanTime invalid: {reason}.'),
  EnsInvalidPlanUtcTime: spec(400, 'InvalidParameter.PlanUtcTime', 'Common.0002', 'The specified field PlanUtcTime invalid: {reason}.'),
  EnsInvalidDataPolicy: spec(400, 'InvalidParameter.DataPolicy', 'Common.0002', 'The specified field DataPolicy invalid: {reason}.'),
  EnsInvalidPassword: spec(400, 'InvalidParameter.Password', 'Common.0002', 'The specified field Password invalid: {reason}.'),
  EnsInvalidEventTypes: spec(400, 'InvalidParameter.EventTypes', 'Common.0002', 'The specified field EventTypes invalid: {reason}.'),
  EnsInvalidEventStatus: spec(400, 'InvalidParameter.EventStatus', 'Common.0002', 'The specified field EventStatus invalid: {reason}.'),
  EnsInvalidEventLevels: spec(400, 'InvalidParameter.EventLevels', 'Common.0002', 'The specified field EventLevels invalid: {reason}.'),
  EnsInvalidResourceIds: spec(400, 'InvalidParameter.ResourceIds', 'Common.0002', 'The specified field ResourceIds invalid: {reason}.'),
  EnsInvalidPageNumber: spec(400, 'InvalidParameter.PageNumber', 'Common.0002', 'The specified field PageNumber invalid: {reason}.'),
  EnsInvalidPageSize: spec(400, 'InvalidParameter.PageSize', 'Common.0002', 'The specified field PageSize invalid: {reason}.'),
  EventNotFound: spec(404, 'InvalidParameter.EventId', 'Common.0404', 'The event {eventId} does not exist in this account; list events with DescribeHistoryEvents.'),
  EventStatusConflict: spec(409, 'InvalidParameter.EventId', 'Common.0409', 'The event {eventId} is {status}; {action} needs an event that is {allowed}.'),
  EventAlreadyOpen: spec(409, 'OperationConflict', 'Common.0409', 'The instance {instanceId} already has the open event {eventId} ({eventType}); handle it, or wait for it to end, before raising another.'),
  // Instance moves (migration/instance-move.ts) behind SMC cross-zone jobs, Huawei cold migration and ENS events.
  InstanceNotFound: spec(404, 'InvalidInstanceId.NotFound', 'Ecs.0114', 'The instance {instanceId} does not exist in this account.'),
  InstanceStatusInvalid: spec(409, 'IncorrectInstanceStatus', 'Ecs.0100', 'The instance {instanceId} is {status}; {action} needs it {allowed}.'),
  AlreadyOnDedicatedHost: spec(400, 'InvalidParameter.DedicatedHostId', 'Ecs.0221', 'The instance {instanceId} already runs on dedicated host {dedicatedHostId}; name another dedicated host, or none for the public pool.'),
  DedicatedHostNotFound: spec(400, 'InvalidDedicatedHostId.NotFound', 'Ecs.0005', 'The dedicated host {dedicatedHostId} does not exist in this account.'),
  ZoneNotFound: spec(400, 'InvalidZoneId.NotFound', 'Ecs.0005', 'The zone {zoneId} does not exist in region {regionId}.'),
  VSwitchZoneMismatch: spec(400, 'VSwitchIdVpcId.Mismatch', 'Ecs.0005', 'The vSwitch {vSwitchId} {reason}; pick a vSwitch of VPC {vpcId} in zone {zoneId}.'),
  InstanceTypeFamilyMismatch: spec(400, 'InvalidInstanceType.FamilyMismatch', 'Ecs.0005', 'The instance type {instanceType} is of family {family}; instance {instanceId} can only change to a type of its own family {currentFamily}.'),
  InstanceDiskNotFound: spec(400, 'ReplicationJobDataDiskIndex.Invalid', 'Ecs.0005', 'The disk {diskId} is not a disk of instance {instanceId}; its disks are: {available}.'),
  MoveNoCapacity: spec(409, 'OperationDenied.NoStock', 'Ecs.0319', '{reason}'),
  InstanceMoveNotFound: spec(404, 'InvalidJobId.NotFound', 'Common.0404', 'The job {jobId} does not exist in this account.'),
  ProjectMismatch: spec(401, 'Forbidden', 'APIGW.0301', 'Incorrect IAM authentication information: the project {projectId} does not belong to the account of access key {accessKeyId}; use the project id `ferry admin create-key` printed with the key.'),
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
