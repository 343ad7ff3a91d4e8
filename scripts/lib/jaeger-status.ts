import net from "node:net";

/** Where spans go over OTLP, if anywhere (the standard variables, traces-specific first). */
export function otlpEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT)?.trim();
  return value ? value : undefined;
}

/** Does something accept a TCP connection at the endpoint's host and port (within timeoutMs)? */
export function endpointAnswers(endpoint: string, timeoutMs = 1_000): Promise<boolean> {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return Promise.resolve(false);
  }
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  return new Promise((resolve) => {
    const socket = net.connect({ host: url.hostname, port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("timeout", () => done(false));
    socket.once("error", () => done(false));
  });
}

/**
 * What to tell a person about the trace in Jaeger: a link only when spans can reach Jaeger,
 * otherwise why there is none and how to get one.
 */
export async function jaegerLine(traceId: string, link: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const endpoint = otlpEndpoint(env);
  const setup = "docker compose up -d jaeger, then OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317";
  if (!endpoint) return `Jaeger: off (no OTEL_EXPORTER_OTLP_ENDPOINT); the trace above is the trace-collector's. For Jaeger: ${setup}`;
  if (!(await endpointAnswers(endpoint))) {
    return `Jaeger: nothing answers at ${endpoint} (OTEL_EXPORTER_OTLP_ENDPOINT), so no span reached it and a Jaeger link would not work. Start it: ${setup}`;
  }
  return `Jaeger: ${link ?? `${env.JAEGER_UI_URL ?? "http://localhost:16686"}/trace/${traceId}`}`;
}
