// ApiError: an HTTP error status with the body OpenAI's API answers errors with,
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "max_tokens", "code": null}}
// so that OpenAI clients raise it as the matching APIError subclass (BadRequestError, AuthenticationError, …).

export type ApiErrorStatus = 400 | 401 | 404 | 405 | 413 | 429 | 500 | 503;

export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** OpenAI's error `type` for each status (llama-server's where OpenAI has none). */
const TYPE_OF_STATUS: Record<ApiErrorStatus, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  404: 'invalid_request_error',
  405: 'invalid_request_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
  500: 'server_error',
  503: 'unavailable_error',
};

export class ApiError extends Error {
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  /** Seconds a client should wait before retrying (sent as Retry-After with 429 / 503). */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly status: ApiErrorStatus,
    message: string,
    details: { param?: string; code?: string; type?: string; retryAfterSeconds?: number } = {},
  ) {
    super(message);
    this.type = details.type ?? TYPE_OF_STATUS[status];
    this.param = details.param ?? null;
    this.code = details.code ?? null;
    this.retryAfterSeconds = details.retryAfterSeconds;
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 for one request field, named in `param` (dotted / indexed as OpenAI names them: "messages[1].content"). */
export function invalidField(param: string, message: string): ApiError {
  return new ApiError(400, message, { param });
}

/** A 400 for a field this server understands but does not implement. */
export function unsupportedField(param: string, message: string): ApiError {
  return new ApiError(400, message, { param, code: 'unsupported_parameter' });
}
