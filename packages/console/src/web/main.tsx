import { render } from "preact";
import "./styles.css";
import { CostsPage } from "./pages/costs.js";
import { AnomaliesPage } from "./pages/anomalies.js";
import { ResearchesPage } from "./pages/researches.js";
import { TracePage } from "./pages/trace.js";
import { BASE, href, interceptLinks, parseRoute, useLocation, type Route } from "./router.js";
import { Empty } from "./components.js";
import { useApiKey } from "./api-key.js";
import { ForgetKey, KeyPrompt } from "./key-prompt.js";

const NAV: { page: Route["page"]; label: string; to: string }[] = [
  { page: "researches", label: "Researches", to: href.researches() },
  { page: "costs", label: "Costs", to: href.costs() },
  { page: "anomalies", label: "Anomalies", to: href.anomalies() },
];

const TITLES: Record<Route["page"], string> = {
  researches: "Researches",
  trace: "Trace",
  costs: "Costs",
  anomalies: "Anomalies",
  missing: "Not found",
};

function App() {
  const loc = useLocation();
  const apiKey = useApiKey();
  const route = parseRoute(loc.pathname);
  document.title = apiKey.needed ? "API key · tracelane" : `${TITLES[route.page]} · tracelane`;
  return (
    <>
      <header class="top">
        <a class="brand" href={href.researches()}>
          tracelane
        </a>
        <nav>
          {NAV.map((n) => (
            <a
              href={n.to}
              key={n.page}
              class={route.page === n.page ? "active" : ""}
              aria-current={route.page === n.page ? "page" : undefined}
            >
              {n.label}
            </a>
          ))}
        </nav>
        <ForgetKey />
      </header>
      {apiKey.needed ? (
        <main data-page="key">
          <KeyPrompt rejected={apiKey.rejected} />
        </main>
      ) : (
        // Keyed by the API key: a new key loads every page again.
        <Page route={route} loc={loc} key={apiKey.key ?? ""} />
      )}
    </>
  );
}

function Page({ route, loc }: { route: Route; loc: ReturnType<typeof useLocation> }) {
  return (
    <>
      <main data-page={route.page}>
        {route.page === "researches" && <ResearchesPage search={loc.search} />}
        {route.page === "trace" && <TracePage traceId={route.traceId} hash={loc.hash} key={route.traceId} />}
        {route.page === "costs" && <CostsPage search={loc.search} />}
        {route.page === "anomalies" && <AnomaliesPage search={loc.search} />}
        {route.page === "missing" && (
          <Empty title={`Nothing at ${route.path}.`}>
            The console has <a href={href.researches()}>Researches</a>, <a href={href.costs()}>Costs</a>,{" "}
            <a href={href.anomalies()}>Anomalies</a> and a page per trace at <code>{BASE}/traces/&lt;traceId&gt;</code>.
          </Empty>
        )}
      </main>
    </>
  );
}

const root = document.getElementById("app")!;
interceptLinks(root);
render(<App />, root);
