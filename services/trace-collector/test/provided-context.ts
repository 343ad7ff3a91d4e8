// The root vitest.global-setup.ts provides `redisUrl`; this repeats its type for this package's tsc.
export {};

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
