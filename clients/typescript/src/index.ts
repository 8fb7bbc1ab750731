// The Flashsale API client: types generated from openapi/flashsale.yaml (src/schema.ts, by
// `npm run generate`) and typed requests by openapi-fetch. Paths, parameters, bodies, answers
// and errors (RFC 9457 problems) are all checked by the compiler:
//
//   const api = createFlashsaleClient("http://localhost:8080", { accessToken: token });
//   const { data, error, response } = await api.POST("/v1/sales/{saleId}/orders", {
//     params: { path: { saleId }, header: { "Idempotency-Key": crypto.randomUUID() } },
//     body: { quantity: 1 },
//   });
//   // response.status 202: data is an Order; otherwise error is a Problem.
import createClient, { type Client, type ClientOptions, type Middleware } from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];
export type User = Schemas["User"];
export type TokenResponse = Schemas["TokenResponse"];
export type Sale = Schemas["Sale"];
export type SaleStatus = Schemas["SaleStatus"];
export type Inventory = Schemas["Inventory"];
export type Order = Schemas["Order"];
export type OrderStatus = Schemas["OrderStatus"];

export type FlashsaleClient = Client<paths>;

export interface FlashsaleClientOptions extends Omit<ClientOptions, "baseUrl"> {
  /**
   * An access token (from POST /v1/auth/login or /v1/auth/refresh), or a function returning the
   * current one; sent as `Authorization: Bearer <token>` unless a request sets its own.
   */
  accessToken?: string | (() => string | undefined);
}

/** A typed client of the API at baseUrl (scheme, host and port, e.g. http://localhost:8080). */
export function createFlashsaleClient(baseUrl: string, options: FlashsaleClientOptions = {}): FlashsaleClient {
  const { accessToken, ...rest } = options;
  const client = createClient<paths>({ ...rest, baseUrl });
  if (accessToken !== undefined) {
    client.use(bearerAuth(accessToken));
  }
  return client;
}

/** Middleware adding `Authorization: Bearer <token>` to requests that do not carry one. */
export function bearerAuth(token: string | (() => string | undefined)): Middleware {
  return {
    onRequest({ request }) {
      const value = typeof token === "function" ? token() : token;
      if (value && !request.headers.has("Authorization")) {
        request.headers.set("Authorization", `Bearer ${value}`);
      }
      return request;
    },
  };
}

/** The name of a problem: the last path segment of its `type`, e.g. "sold-out". */
export function problemName(problem: Pick<Problem, "type">): string {
  return problem.type.slice(problem.type.lastIndexOf("/") + 1);
}
