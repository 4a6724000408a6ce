// SseWriter: a Server-Sent Events response framed as OpenAI streams do — one `data: {json}\n\n` event per chunk,
// ending with `data: [DONE]\n\n`. Writing never throws: once the client has gone (socket closed, EPIPE, reset)
// every write is dropped and `closed` is true. Backpressure: send() reports whether the socket took the event
// without queueing; while it is backed up (`backedUp`), a producer that cannot pause merges its output and sends it
// once `drained()` resolves.
import type { ServerResponse } from 'node:http';

export const SSE_HEADERS = {
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  // Tells nginx-style proxies not to buffer the stream.
  'X-Accel-Buffering': 'no',
} as const;

export class SseWriter {
  private ended = false;

  /** Sends the status line and SSE headers at once, so the client sees the stream open. */
  constructor(private readonly response: ServerResponse) {
    // A write to a socket the client reset surfaces as an 'error' event; it only means the client is gone.
    response.on('error', () => {});
    if (!response.headersSent && !response.destroyed) {
      response.writeHead(200, SSE_HEADERS);
      response.flushHeaders();
    }
  }

  /** True once the stream was ended or the client went away; writes are then dropped. */
  get closed(): boolean {
    return this.ended || this.response.destroyed || this.response.writableEnded;
  }

  /** True while earlier events still wait in the socket's buffer. */
  get backedUp(): boolean {
    return !this.closed && this.response.writableNeedDrain;
  }

  /** Writes one `data:` event with `payload` as JSON; false when it was queued behind a full buffer or dropped. */
  send(payload: unknown): boolean {
    return this.write(`data: ${JSON.stringify(payload)}\n\n`);
  }

  /** Resolves when the socket's buffer has drained, or at once when it is not backed up or the client is gone. */
  drained(): Promise<void> {
    if (!this.backedUp) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.response.off('drain', done);
        this.response.off('close', done);
        resolve();
      };
      this.response.on('drain', done);
      this.response.on('close', done);
    });
  }

  /** Writes `data: [DONE]` and ends the response. */
  done(): void {
    this.write('data: [DONE]\n\n');
    this.end();
  }

  /** Ends the response without [DONE] (after an error event). */
  end(): void {
    if (this.closed) return;
    this.ended = true;
    this.response.end();
  }

  private write(frame: string): boolean {
    if (this.closed) return false;
    return this.response.write(frame);
  }
}
