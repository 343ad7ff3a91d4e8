import { useState } from "preact/hooks";
import { forgetApiKey, setApiKey, useApiKey } from "./api-key.js";

/**
 * Shown when the api answered 401: asks for the API key the console then sends as `Authorization:
 * Bearer <key>` (kept for this tab only). The browser's own login prompt for /ui (Basic) loads the
 * page, but a page cannot read what was typed there, so the key is asked for once more here.
 */
export function KeyPrompt(props: { rejected: boolean }) {
  const [value, setValue] = useState("");
  return (
    <form
      class="key-prompt"
      data-testid="key-prompt"
      onSubmit={(ev) => {
        ev.preventDefault();
        if (value.trim()) setApiKey(value.trim());
      }}
    >
      <h1>API key needed</h1>
      <p>
        This api needs an API key (one of its <code>API_KEYS</code>). The console sends it as <code>Authorization: Bearer …</code> on every
        request and keeps it for this tab only (sessionStorage): closing the tab forgets it. The browser's own sign-in for this page cannot
        pass the key on, so it is asked for once more here.
      </p>
      {props.rejected && (
        <p class="error-box" role="alert" data-testid="key-rejected">
          The api did not accept that key. Check it and try again.
        </p>
      )}
      <label>
        API key
        <input
          type="password"
          name="apiKey"
          autocomplete="off"
          spellcheck={false}
          autofocus
          value={value}
          onInput={(ev) => setValue((ev.target as HTMLInputElement).value)}
          data-testid="key-input"
        />
      </label>
      <button type="submit" class="primary" disabled={!value.trim()} data-testid="key-submit">
        Use this key
      </button>
    </form>
  );
}

/** In the header while a key is in use: forget it (this tab) and ask again. */
export function ForgetKey() {
  const { key } = useApiKey();
  if (!key) return null;
  return (
    <button type="button" class="forget-key" onClick={forgetApiKey} data-testid="forget-key" title="Forget the API key this tab uses">
      Forget key
    </button>
  );
}
