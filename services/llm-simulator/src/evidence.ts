import { createHash } from "node:crypto";
import type { RequestHandler } from "express";
import { z } from "zod";
import { topicWords } from "./content.js";
import { invalidRequest, sendError } from "./errors.js";
import { intBetween, pick, seededRandom } from "./random.js";

/**
 * A search API for the fact-checking agent's `search_evidence` tool, shaped like Tavily's (`POST /search
 * { query, max_results }` -> `{ query, results: [{ title, url, content, score }] }`), so pointing the workers at a
 * real search service is one URL and one key away. Results are deterministic: a small bundled corpus ranked by
 * term overlap, topped up with sources synthesised from the query when the corpus has too few.
 */
interface Doc {
  title: string;
  url: string;
  content: string;
}

const CORPUS: readonly Doc[] = [
  {
    title: "Global mean sea level rise, satellite altimetry 1993-2024",
    url: "https://evidence.example/sea-level/altimetry",
    content:
      "Satellite altimetry shows global mean sea level rising about 3.4 mm per year since 1993, accelerating to over 4 mm per year in the last decade.",
  },
  {
    title: "Tide gauge reconstructions of sea level",
    url: "https://evidence.example/sea-level/tide-gauges",
    content:
      "Tide gauge records indicate roughly 20 cm of global sea level rise between 1900 and 2020, with thermal expansion and glacier melt the main contributors.",
  },
  {
    title: "Why the sky is blue: Rayleigh scattering",
    url: "https://evidence.example/physics/rayleigh",
    content:
      "Short blue wavelengths of sunlight scatter more strongly off air molecules than red wavelengths, which is why the daytime sky appears blue.",
  },
  {
    title: "Boiling point of water and altitude",
    url: "https://evidence.example/physics/boiling-altitude",
    content: "Water boils at about 100 C at sea level and roughly 1 C lower for every 300 m of altitude, about 93 C at 2,000 m.",
  },
  {
    title: "Hurricane categories: the Saffir-Simpson scale",
    url: "https://evidence.example/weather/saffir-simpson",
    content:
      "The Saffir-Simpson scale rates hurricanes from category 1 to 5 by sustained wind speed; category 5 begins at 157 mph (252 km/h).",
  },
  {
    title: "Autumn leaf colour and chlorophyll",
    url: "https://evidence.example/biology/leaf-colour",
    content:
      "Leaves change colour in autumn as chlorophyll breaks down, revealing carotenoids, while anthocyanins produce reds in some species.",
  },
  {
    title: "How tides work",
    url: "https://evidence.example/oceans/tides",
    content: "Tides are caused mainly by the Moon's gravity with a smaller solar contribution; most coasts see two high tides a day.",
  },
  {
    title: "Coffee consumption and cardiovascular outcomes: a meta-analysis",
    url: "https://evidence.example/health/coffee",
    content:
      "Moderate coffee intake of 3-4 cups a day was associated with a lower risk of cardiovascular disease in pooled cohort studies.",
  },
  {
    title: "Sleep duration and cognitive performance",
    url: "https://evidence.example/health/sleep",
    content: "Adults sleeping under six hours a night showed measurable declines in attention and working memory in controlled trials.",
  },
  {
    title: "Urban heat islands",
    url: "https://evidence.example/climate/urban-heat",
    content: "Dense cities can be 1-3 C warmer than surrounding rural areas on average, and up to 12 C warmer on calm evenings.",
  },
  {
    title: "Renewable electricity share, 2024",
    url: "https://evidence.example/energy/renewables",
    content: "Renewables supplied about 30 percent of global electricity in 2024, led by hydropower, wind and solar.",
  },
  {
    title: "Honeybee colony losses",
    url: "https://evidence.example/ecology/bees",
    content: "Beekeepers in temperate regions report winter colony losses of 20-40 percent, linked to mites, pesticides and forage loss.",
  },
];

const SearchRequestSchema = z.looseObject({
  query: z.string().trim().min(1, "query must not be empty").max(400, "query is longer than 400 characters"),
  max_results: z.number().int().min(1).max(20).optional(),
});

const terms = (text: string) => new Set(topicWords(text));

/** The ranked results for `query`: deterministic for a given query and corpus. */
export function searchEvidence(query: string, maxResults = 5): Array<Doc & { score: number }> {
  const wanted = terms(query);
  const ranked = CORPUS.map((doc) => {
    const have = terms(`${doc.title} ${doc.content}`);
    let hits = 0;
    for (const t of wanted) if (have.has(t)) hits++;
    return { ...doc, score: wanted.size ? Math.round((hits / wanted.size) * 1000) / 1000 : 0 };
  })
    .filter((d) => d.score > 0)
    .sort((a, b) => b.score - a.score || a.url.localeCompare(b.url));
  const results = ranked.slice(0, maxResults);
  // Too few matches: sources synthesised from the query's own words, fixed by its digest.
  const digest = createHash("sha256").update(query.toLowerCase()).digest();
  const random = seededRandom(digest.readUInt32LE(0));
  const words = [...wanted];
  for (let i = results.length; i < Math.min(maxResults, 3); i++) {
    const a = words.length ? pick(random, words) : "the topic";
    const b = words.length ? pick(random, words) : "its effects";
    const year = intBetween(random, 2012, 2025);
    results.push({
      title: `Review of ${a} and ${b} (${year})`,
      url: `https://evidence.example/synth/${digest.toString("hex").slice(0, 12)}-${i}`,
      content: `A ${year} review of ${intBetween(random, 4, 60)} studies reports that ${a} and ${b} are associated in ${intBetween(random, 30, 90)} percent of the cases examined.`,
      score: Math.round((0.3 - i * 0.05) * 1000) / 1000,
    });
  }
  return results;
}

export function searchHandler(): RequestHandler {
  return (req, res) => {
    const parsed = SearchRequestSchema.safeParse(req.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return sendError(
        res,
        invalidRequest(
          `Invalid search request: ${issue.path.join(".") || "body"}: ${issue.message}.`,
          issue.path.join(".") || null,
          "invalid_value",
        ),
      );
    }
    const started = performance.now();
    const results = searchEvidence(parsed.data.query, parsed.data.max_results ?? 5).map((r) => ({ ...r, raw_content: null }));
    res.json({ query: parsed.data.query, results, response_time: Math.round(performance.now() - started) / 1000 });
  };
}
