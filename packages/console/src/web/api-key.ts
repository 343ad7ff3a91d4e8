import { useEffect, useState } from "preact/hooks";

/**
 * The API key the console sends as `Authorization: Bearer <key>`, kept in sessionStorage: it lasts as
 * long as the tab and is gone when the tab closes (never in localStorage, a cookie or the URL).
 */
const STORAGE_KEY = "tracelane.apiKey";

/** "needed": the api answered 401 (no key, or the stored one is not known); the console asks for one. */
type KeyState = { key: string | undefined; needed: boolean; rejected: boolean };

const listeners = new Set<() => void>();
let state: KeyState = { key: readStored(), needed: false, rejected: false };

function readStored(): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
  } catch {
    return undefined; // storage disabled: the key lives in memory only
  }
}

function update(next: Partial<KeyState>): void {
  state = { ...state, ...next };
  listeners.forEach((l) => l());
}

/** The headers every api call carries: the key, when one was given. */
export const authHeaders = (): Record<string, string> => (state.key ? { authorization: `Bearer ${state.key}` } : {});

/** The api refused the request (401): ask for a key (saying the stored one was refused, if one was sent). */
export function keyRefused(): void {
  update({ needed: true, rejected: state.key !== undefined });
}

/** Use `key` for this tab from now on. */
export function setApiKey(key: string): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, key);
  } catch {
    // storage disabled: memory only
  }
  update({ key, needed: false, rejected: false });
}

/** Forget the key (this tab's storage too) and ask again. */
export function forgetApiKey(): void {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored
  }
  update({ key: undefined, needed: true, rejected: false });
}

/** The key state, re-rendering when it changes. */
export function useApiKey(): KeyState {
  const [, setTick] = useState(0);
  useEffect(() => {
    const l = () => setTick((t) => t + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return state;
}
