//! The office pages' only door to the server: JSON over fetch to the same origin.
//!
//! The session is the server's `kaunter_session` cookie (HttpOnly, so no script, ours included,
//! can read it; SameSite=Strict), sent by the browser itself. What the page keeps is the
//! session's view (name, permissions, CSRF token) in memory only: every request that changes
//! something carries the CSRF token in `X-CSRF-Token`, and a reload asks `GET /v1/auth/session`
//! again. A 401 anywhere means the session has ended: `onSessionEnded` sends the person back to
//! sign in.

import type { OfficeGets, OfficePosts, OfficePuts } from "./api-types";
import type { Refusal } from "./format";
import type { ErrorBody, FieldError, LoginRequest, SessionView } from "../wire";

/** A refused or failed request, with the server's stable code. */
export class ApiError extends Error implements Refusal {
  readonly status: number;
  readonly code: string;
  readonly retryAfterSecs: number | null;
  readonly fields: FieldError[];

  constructor(refusal: Refusal) {
    super(refusal.message);
    this.name = "ApiError";
    this.status = refusal.status;
    this.code = refusal.code;
    this.retryAfterSecs = refusal.retryAfterSecs;
    this.fields = refusal.fields ?? [];
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== "object" || value === null) return false;
  const body = value as Record<string, unknown>;
  return typeof body.code === "string" && typeof body.message === "string";
}

async function refusalOf(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page): the status alone speaks.
  }
  const retryAfter = Number(response.headers.get("Retry-After"));
  return new ApiError({
    status: response.status,
    code: isErrorBody(body) ? body.code : `http_${response.status}`,
    message: isErrorBody(body) ? body.message : `The server answered ${response.status}.`,
    retryAfterSecs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null,
    fields: isErrorBody(body) && Array.isArray(body.fields) ? body.fields : [],
  });
}

type Method = "GET" | "POST" | "PUT";

export class OfficeApi {
  private session: SessionView | null = null;

  /** Called once per ended session (a 401 from any request but the login itself). */
  onSessionEnded: () => void = () => {};

  get current(): SessionView | null {
    return this.session;
  }

  private async send(method: Method, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && this.session) headers["X-CSRF-Token"] = this.session.csrf_token;
    try {
      return await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch {
      throw new ApiError({
        status: 0,
        code: "network",
        message: "The server cannot be reached.",
        retryAfterSecs: null,
      });
    }
  }

  private async json<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    if (!response.ok) {
      const error = await refusalOf(response);
      if (error.status === 401) this.endSession();
      throw error;
    }
    return (await response.json()) as T;
  }

  private endSession(): void {
    const had = this.session !== null;
    this.session = null;
    if (had) this.onSessionEnded();
  }

  /** Signs in; the server sets the session cookie. Refusals are thrown as ApiError. */
  async login(request: LoginRequest): Promise<SessionView> {
    const response = await this.send("POST", "/v1/auth/login", request);
    if (!response.ok) throw await refusalOf(response);
    this.session = (await response.json()) as SessionView;
    return this.session;
  }

  /** The live session this browser has, if any (a reloaded page). */
  async resume(): Promise<SessionView | null> {
    const response = await this.send("GET", "/v1/auth/session");
    if (response.status === 401) return null;
    if (!response.ok) throw await refusalOf(response);
    this.session = (await response.json()) as SessionView;
    return this.session;
  }

  /** Ends the session on the server (which clears the cookie) and forgets it here. */
  async logout(): Promise<void> {
    try {
      if (this.session) {
        const response = await this.send("POST", "/v1/auth/logout");
        if (!response.ok && response.status !== 401) throw await refusalOf(response);
      }
    } finally {
      this.session = null;
    }
  }

  get<P extends keyof OfficeGets>(path: P, query = ""): Promise<OfficeGets[P]> {
    return this.json<OfficeGets[P]>("GET", `${path}${query}`);
  }

  /** A change; a route that takes no body (its request is `never`) is called without one. */
  post<P extends keyof OfficePosts>(
    path: P,
    ...body: [OfficePosts[P]["request"]] extends [never] ? [] : [OfficePosts[P]["request"]]
  ): Promise<OfficePosts[P]["answer"]> {
    return this.json<OfficePosts[P]["answer"]>("POST", path, body[0]);
  }

  put<P extends keyof OfficePuts>(path: P, body: OfficePuts[P]["request"]): Promise<OfficePuts[P]["answer"]> {
    return this.json<OfficePuts[P]["answer"]>("PUT", path, body);
  }
}

/** What any thrown value means as a refusal. */
export function toRefusal(reason: unknown): Refusal {
  if (reason instanceof ApiError) return reason;
  return {
    status: 0,
    code: "unexpected",
    message: reason instanceof Error ? reason.message : String(reason),
    retryAfterSecs: null,
  };
}
