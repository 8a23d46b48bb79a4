/** Fetch helpers: JSON in and out, problem+json errors as ApiError. */
import type { Problem } from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | null,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'concord.adminToken';

export function adminToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setAdminToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage unavailable: the token lives as long as the page */
  }
  window.dispatchEvent(new Event('concord-auth'));
}

export async function api<T>(path: string, init: RequestInit & { json?: unknown; auth?: boolean; timeoutMs?: number } = {}): Promise<T> {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  headers.set('accept', 'application/json');
  if (init.auth) {
    const token = adminToken();
    if (token) headers.set('authorization', `Bearer ${token}`);
  }
  const res = await fetch(path, { ...init, headers, body, signal: init.signal ?? AbortSignal.timeout(init.timeoutMs ?? 15_000) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const problem = parsed && typeof parsed === 'object' ? (parsed as Problem) : null;
    if (res.status === 401 && init.auth) setAdminToken(null);
    throw new ApiError(res.status, problem, problem?.detail ?? problem?.title ?? `${res.status} ${res.statusText}`);
  }
  return parsed as T;
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    const fields = err.problem?.errors?.map((e) => `${e.path}: ${e.message}`).join('; ');
    return fields ? `${err.message} (${fields})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
