// JSON over node:http for the server: reading a request body (with a size limit) and writing JSON answers and
// OpenAI-shaped error answers.
import type http from 'node:http';

import { ApiError, type ApiErrorBody } from './api-error.js';

/** The request body parsed as JSON; 413 past `limitBytes`, 400 when it is not JSON. */
export function readJsonBody(request: http.IncomingMessage, limitBytes: number): Promise<unknown> {
  const tooLarge = new ApiError(413, `the request body is larger than ${limitBytes} bytes`, { code: 'request_too_large' });
  return new Promise((resolve, reject) => {
    if (Number(request.headers['content-length'] ?? 0) > limitBytes) {
      request.resume(); // discard the body; the answer closes the connection
      reject(tooLarge);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limitBytes) {
        chunks.push(chunk);
        return;
      }
      request.off('data', onData);
      request.resume();
      reject(tooLarge);
    };
    request.on('data', onData);
    request.on('error', reject);
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return reject(new ApiError(400, 'the request body is empty: send a JSON object'));
      try {
        resolve(JSON.parse(text));
      } catch (error) {
        reject(new ApiError(400, `the request body is not valid JSON: ${(error as Error).message}`));
      }
    });
  });
}

/** The OpenAI error body for any failure (a 500 server_error for what is not an ApiError). */
export function errorBody(error: unknown): ApiErrorBody {
  if (error instanceof ApiError) return error.body();
  return { error: { message: (error as Error)?.message ?? String(error), type: 'server_error', param: null, code: null } };
}

export function sendJson(response: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  if (response.headersSent || response.destroyed) return;
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

/** An error answer: the ApiError's status and body, or a 500 for anything else. */
export function sendError(response: http.ServerResponse, error: unknown): void {
  if (response.headersSent) {
    response.end();
    return;
  }
  const status = error instanceof ApiError ? error.status : 500;
  const headers: http.OutgoingHttpHeaders = {};
  if (error instanceof ApiError && error.retryAfterSeconds !== undefined) headers['Retry-After'] = String(Math.ceil(error.retryAfterSeconds));
  // An unread body (413) cannot be skipped on a kept-alive connection: close it after the answer.
  if (status === 413) headers.Connection = 'close';
  sendJson(response, status, errorBody(error), headers);
}
