/**
 * RFC 9457 problem details. Every error on the wire is one of these; stack traces never are.
 */
export interface FieldError {
  path: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  411: 'Length Required',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function statusTitle(status: number): string {
  return TITLES[status] ?? (status >= 500 ? 'Server Error' : 'Client Error');
}

/** The problem `type` URI: a stable slug under the project's namespace. */
export function problemType(slug: string): string {
  return `https://concord.dev/problems/${slug}`;
}

export function problem(status: number, slug: string, detail: string, extra: Partial<Problem> = {}): Problem {
  return { type: problemType(slug), title: statusTitle(status), status, detail, ...extra };
}

/** Throw from a handler to answer with a problem. */
export class HttpError extends Error {
  readonly problem: Problem;
  readonly headers: Record<string, string>;
  constructor(status: number, slug: string, detail: string, extra: Partial<Problem> = {}, headers: Record<string, string> = {}) {
    super(detail);
    this.problem = problem(status, slug, detail, extra);
    this.headers = headers;
  }
  get status(): number {
    return this.problem.status;
  }
}

export function badRequest(errors: FieldError[], detail?: string): HttpError {
  const first = errors[0];
  return new HttpError(400, 'validation', detail ?? (first ? `${first.path}: ${first.message}` : 'invalid request'), { errors });
}

export function notFound(detail: string): HttpError {
  return new HttpError(404, 'not-found', detail);
}

export function isProblem(value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && typeof (value as Problem).status === 'number' && typeof (value as Problem).title === 'string';
}
