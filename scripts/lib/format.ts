/** The CLI's table and USD formatting (one implementation for every plain-text output), and a short ms. */
export { table, usd } from "@tracelane/cli";

export const ms = (v: number | undefined) => (v === undefined ? "-" : `${Math.round(v)} ms`);
