// Compile-time checks of the generated types (run by `npm run typecheck`, never executed): the
// compiler refuses calls that break the contract.
import { createFlashsaleClient } from "../src/index.js";

export async function contractIsEnforced(): Promise<void> {
  const api = createFlashsaleClient("http://localhost:8080");
  const saleId = "0193a7c3-1f20-7c41-8e55-6a7b8c9d0e1f";

  // @ts-expect-error Idempotency-Key is a required header of a purchase.
  await api.POST("/v1/sales/{saleId}/orders", { params: { path: { saleId } }, body: { quantity: 1 } });

  await api.POST("/v1/sales/{saleId}/orders", {
    params: { path: { saleId }, header: { "Idempotency-Key": "key-00000001" } },
    // @ts-expect-error quantity is a number.
    body: { quantity: "1" },
  });

  // @ts-expect-error no such path.
  await api.GET("/v1/no-such-path");

  const { data, error } = await api.GET("/v1/sales/{saleId}", { params: { path: { saleId } } });
  if (data) {
    const status: "scheduled" | "active" | "sold_out" | "ended" = data.status;
    void status;
  } else if (error) {
    const problemType: string = error.type;
    void problemType;
  }
}
