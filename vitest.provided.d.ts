// What vitest.global-setup.ts provides to every test file (`inject("redisUrl")`).
import "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
