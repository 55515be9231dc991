/** The agent's log file in its data folder: JSON lines, rotated by size, a bounded number kept. */
import path from 'node:path';

import winston from 'winston';

/** Maximum size of one log file before rotation. */
export const LOG_FILE_BYTES = 10 * 1024 * 1024;
/** Number of rotated files kept. */
export const LOG_FILES_KEPT = 5;

/** A winston transport writing `DATA_DIR/logs/agent.log` with rotation. */
export function fileLogTransport(dataDir: string): winston.transport {
  return new winston.transports.File({
    filename: path.join(dataDir, 'logs', 'agent.log'),
    maxsize: LOG_FILE_BYTES,
    maxFiles: LOG_FILES_KEPT,
    tailable: true,
    format: winston.format.json(),
  });
}
