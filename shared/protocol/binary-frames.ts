/**
 * Binary frames carry body bytes: one kind byte, the job id (16 bytes of its UUID), the byte
 * offset of the chunk in the body (8 bytes, so that a resent chunk is recognized), then data.
 */
import { OutpostError } from '../errors.js';

/** What a binary frame carries. */
export const FRAME_KIND = { responseBody: 1, requestBody: 2 } as const;

/** One decoded binary frame. */
export interface BodyFrame {
  kind: number;
  jobId: string;
  offset: number;
  data: Buffer;
}

const HEADER_BYTES = 1 + 16 + 8;
const JOB_ID = /^job_([0-9a-f]{32})$/;

/** Encodes a body chunk of a job. */
export function encodeBodyFrame(kind: number, jobId: string, offset: number, data: Buffer): Buffer {
  const m = JOB_ID.exec(jobId);
  if (!m)
    throw new OutpostError('PROTOCOL_ERROR', `job id ${jobId} cannot travel in a binary frame`);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt8(kind, 0);
  Buffer.from(m[1]!, 'hex').copy(header, 1);
  header.writeBigUInt64BE(BigInt(offset), 17);
  return Buffer.concat([header, data]);
}

/** Decodes a binary frame; throws PROTOCOL_ERROR when it is malformed. */
export function decodeBodyFrame(frame: Buffer): BodyFrame {
  if (frame.length < HEADER_BYTES) {
    throw new OutpostError(
      'PROTOCOL_ERROR',
      `binary frame of ${frame.length} bytes is shorter than its header`,
    );
  }
  const kind = frame.readUInt8(0);
  if (kind !== FRAME_KIND.responseBody && kind !== FRAME_KIND.requestBody) {
    throw new OutpostError('PROTOCOL_ERROR', `binary frame of unknown kind ${kind}`);
  }
  const offset = Number(frame.readBigUInt64BE(17));
  return {
    kind,
    jobId: `job_${frame.subarray(1, 17).toString('hex')}`,
    offset,
    data: frame.subarray(HEADER_BYTES),
  };
}
