import { chromium, type Browser } from "playwright-core";

/** Debian's Chromium, headless, as every browser test drives it (no sandbox in CI containers, no GPU, no network chatter). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}
