/** A job's whole deadline as an AbortSignal whose reason says TIMEOUT_JOB. */
import { OutpostError } from '../errors.js';

/** Aborts at `deadlineAt` with TIMEOUT_JOB; `dispose` clears the timer. */
export function deadlineSignal(deadlineAt: string | number): {
  signal: AbortSignal;
  dispose: () => void;
} {
  const controller = new AbortController();
  const at = typeof deadlineAt === 'number' ? deadlineAt : Date.parse(deadlineAt);
  const ms = Math.max(0, Math.min(at - Date.now(), 2 ** 31 - 1));
  const timer = setTimeout(
    () =>
      controller.abort(
        new OutpostError('TIMEOUT_JOB', "the job's deadline passed before the answer was complete"),
      ),
    ms,
  );
  timer.unref();
  return { signal: controller.signal, dispose: () => clearTimeout(timer) };
}
