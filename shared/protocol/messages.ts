/**
 * The wire protocol between a terminal and the control plane. Control messages are JSON text
 * frames, each checked against its schema on receipt; body bytes travel as binary frames (see
 * `binary-frames.ts`) under a credit window granted by the receiver.
 *
 * Session: the agent opens the socket with a short-lived JWT, then sends `hello`; the control
 * plane answers `welcome` (or closes with PROTOCOL_VERSION_UNSUPPORTED), then `accounts.sync`.
 */
import { z } from 'zod';

import { AUTH_TYPES } from '../accounts.js';
import { jobRequestSchema } from '../jobs.js';

/** WebSocket close codes used by Outpost (4000-4999 is the application range). */
export const CLOSE_CODES = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 4400,
  unauthorized: 4401,
  revoked: 4403,
  versionUnsupported: 4426,
  replaced: 4409,
} as const;

/** Limits of the agent channel, set explicitly on both sides. */
export const CHANNEL_LIMITS = {
  /** Largest message accepted (JSON or binary), in bytes. */
  maxPayloadBytes: 16 * 1024 * 1024,
  /**
   * Largest binary body chunk a sender produces: large enough that per-frame costs (a credit
   * message, a file write, a wake-up) are small next to the bytes, small next to the window.
   */
  chunkBytes: 1024 * 1024,
  /**
   * Bytes of body a sender may have in flight beyond what the receiver confirmed: a few chunks,
   * so that the pipe stays full while credit travels back.
   */
  creditWindowBytes: 8 * 1024 * 1024,
} as const;

const errorBody = z.object({ code: z.string(), message: z.string(), field: z.string().optional() });
const id = z.string().min(1).max(100);
const fieldMap = z.record(z.string(), z.unknown());
const headers = z.record(z.string(), z.union([z.string(), z.array(z.string())]));

/** An account as sent to a terminal. */
export const accountDescriptorSchema = z.object({
  id,
  name: z.string(),
  authType: z.enum(AUTH_TYPES),
  host: z.string(),
  port: z.number().int().nullable(),
  settings: fieldMap,
  /** Sealed secrets, then sealed patches to merge over them in order (null removes a field). */
  sealedSecrets: z.array(z.string()).max(100),
  revision: z.number().int(),
});

const hop = z.object({
  name: z.string(),
  ok: z.boolean(),
  ms: z.number().nullable(),
  detail: z.string(),
  hint: z.string().nullable(),
});

/** Messages from the agent. */
export const agentMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('hello'),
    protocolVersion: z.number().int(),
    agentVersion: z.string().max(50),
    hostname: z.string().max(255),
    os: z.string().max(100),
    startedAt: z.string(),
    maxConcurrency: z.number().int().positive(),
    /** Jobs the agent still holds: running, or finished and not yet acknowledged. */
    jobs: z.array(z.object({ jobId: id, state: z.enum(['running', 'finished']) })).max(10_000),
  }),
  z.object({ type: z.literal('heartbeat'), sentAt: z.string(), running: z.number().int() }),
  z.object({ type: z.literal('job.running'), jobId: id }),
  z.object({ type: z.literal('job.head'), jobId: id, status: z.number().int(), headers }),
  z.object({
    type: z.literal('job.end'),
    jobId: id,
    state: z.enum(['succeeded', 'failed', 'cancelled', 'timed_out']),
    error: errorBody.nullable(),
    bodyBytes: z.number().int().nonnegative(),
  }),
  z.object({
    type: z.literal('body.credit'),
    jobId: id,
    confirmedBytes: z.number().int().nonnegative(),
  }),
  z.object({
    type: z.literal('accounts.status'),
    accounts: z.array(
      z.object({
        id,
        revision: z.number().int(),
        warnings: z.array(z.string()),
        secretFields: z.array(z.string()),
      }),
    ),
  }),
  z.object({
    type: z.literal('logs.reply'),
    requestId: id,
    lines: z.array(z.record(z.string(), z.unknown())),
  }),
  z.object({ type: z.literal('test.reply'), requestId: id, hops: z.array(hop) }),
]);

/** Messages from the control plane. */
export const controlMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('welcome'),
    protocolVersion: z.number().int(),
    terminalId: id,
    heartbeatMs: z.number().int().positive(),
    serverTime: z.string(),
    maxConcurrency: z.number().int().positive().nullable(),
  }),
  z.object({ type: z.literal('accounts.sync'), accounts: z.array(accountDescriptorSchema) }),
  z.object({ type: z.literal('account.upsert'), account: accountDescriptorSchema }),
  z.object({ type: z.literal('account.remove'), accountId: id }),
  z.object({
    type: z.literal('job.start'),
    jobId: id,
    accountId: id,
    request: jobRequestSchema,
    deadlineAt: z.string(),
    /** True when the request body follows as binary frames, ended by `body.end`. */
    bodyUpload: z.boolean(),
  }),
  z.object({ type: z.literal('job.cancel'), jobId: id }),
  /** The result is stored: the agent may forget the job. */
  z.object({ type: z.literal('job.ack'), jobId: id }),
  /** After a reconnect: resend the body from `offset` (what the control plane holds). */
  z.object({ type: z.literal('job.resume'), jobId: id, offset: z.number().int().nonnegative() }),
  z.object({
    type: z.literal('body.credit'),
    jobId: id,
    confirmedBytes: z.number().int().nonnegative(),
  }),
  z.object({ type: z.literal('body.end'), jobId: id, bodyBytes: z.number().int().nonnegative() }),
  z.object({ type: z.literal('heartbeat.ack'), sentAt: z.string(), serverTime: z.string() }),
  z.object({
    type: z.literal('logs.request'),
    requestId: id,
    since: z.string().nullable(),
    level: z.string().nullable(),
    limit: z.number().int().positive().max(1000),
  }),
  z.object({
    type: z.literal('test.request'),
    requestId: id,
    accountId: id.nullable(),
  }),
]);

/** A message from the agent. */
export type AgentMessage = z.infer<typeof agentMessageSchema>;
/** A message from the control plane. */
export type ControlMessage = z.infer<typeof controlMessageSchema>;
/** An account as it travels to a terminal. */
export type AccountDescriptorWire = z.infer<typeof accountDescriptorSchema>;
/** One hop of a connection test. */
export type TestHop = z.infer<typeof hop>;
