/** Input held for a client still waiting for its greeting; beyond it the socket is not read. */
const EARLY_INPUT_CAP = 64 * 1024;

/**
 * What a client sent before its greeting (a one-liner piped into socat
 * writes at once and half-closes). It is read, not left in the socket, so
 * that a client that gives up waiting is noticed at once; it is the
 * session's once the client is greeted.
 */
export class EarlyInput {
  private chunks: Buffer[] = [];
  /** Bytes held. */
  bytes = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /** Whether the socket may be read for more. */
  get hasRoom(): boolean {
    return this.bytes < EARLY_INPUT_CAP;
  }

  /** What was held, once (undefined if nothing was). */
  take(): Buffer | undefined {
    if (this.chunks.length === 0) return undefined;
    const all = Buffer.concat(this.chunks);
    this.chunks = [];
    return all;
  }
}
