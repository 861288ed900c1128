/**
 * The bearer-token gate of /api (all but /api/health): hono's bearerAuth (constant-time comparison of
 * digests), with every refusal, a malformed header included, answered 401 in the API's JSON error shape.
 */
import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { HTTPException } from "hono/http-exception";
import { HttpError } from "./http_error.ts";

/** The token characters of RFC 6750 (and of bearerAuth): a token outside them could never be sent. */
export const TOKEN_CHARS = /^[A-Za-z0-9._~+/-]+=*$/;

const OPEN = new Set(["/api/health"]);

export function tokenAuth(token: string): MiddlewareHandler {
  const check = bearerAuth({ token });
  return async (c, next) => {
    if (OPEN.has(c.req.path)) return await next();
    try {
      // next() runs inside; errors of later handlers are answered there and never reach this catch.
      return await check(c, next);
    } catch (err) {
      if (!(err instanceof HTTPException)) throw err;
      const given = c.req.header("Authorization");
      throw new HttpError(
        401,
        "unauthorized",
        given
          ? "the Authorization header does not carry the server's token"
          : "send Authorization: Bearer <token>",
        { "WWW-Authenticate": 'Bearer realm="sam-medseg"' },
      );
    }
  };
}
