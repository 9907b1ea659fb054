// Drives Debian's chromium (headless) through the dashboard as a person does: signs in with
// the form, opens each page, and reports what is on screen (the body's visible text, the
// figures marked data-field, the notice's ID-number cells) as JSON on stdout. The Rust test
// (tests/browser.rs) compares that with the API. Input on stdin:
// {"base": URL, "executable": path, "screenshots": dir or null,
//  "sessions": [{"token": "...", "pages": [{"path": "/", "name": "overview"}]}]}
import { chromium } from "playwright-core";

const input = JSON.parse(await new Promise((resolve) => {
  let s = "";
  process.stdin.on("data", (d) => (s += d));
  process.stdin.on("end", () => resolve(s));
}));

const browser = await chromium.launch({
  executablePath: input.executable,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const out = [];
try {
  for (const session of input.sessions) {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, locale: "zh-CN" });
    const page = await context.newPage();
    await page.goto(input.base + "/");
    const signIn = { path: "/", name: "signin", text: await page.innerText("body") };
    if (input.screenshots && session.screenshot_signin) {
      await page.screenshot({ path: `${input.screenshots}/signin.png`, fullPage: true });
    }
    await page.fill("input[name=token]", session.token);
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    const cookies = await context.cookies();
    const visits = [signIn];
    for (const p of session.pages) {
      const response = await page.goto(input.base + p.path);
      const seen = await page.evaluate(() => ({
        text: document.body.innerText,
        fields: [...document.querySelectorAll("[data-field]")].map((e) => ({
          field: e.dataset.field,
          text: e.innerText,
          pool: e.closest("[data-pool]")?.dataset.pool ?? null,
          year: e.closest("[data-year]")?.dataset.year ?? null,
        })),
        id_numbers: [...document.querySelectorAll("td.id_number")].map((e) => e.innerText),
        svg_gauges: document.querySelectorAll("figure.gauge svg").length,
      }));
      visits.push({ path: p.path, name: p.name, status: response.status(), ...seen });
      if (input.screenshots) {
        await page.screenshot({ path: `${input.screenshots}/${p.name}.png`, fullPage: true });
      }
    }
    out.push({ cookies: cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite })), visits });
    await context.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out));
