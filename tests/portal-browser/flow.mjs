// The RCCS's main flow in the system Chromium, as a person clicks it: asked
// for his request, sent to sign in, the provider's login page, back on the
// request, the terms accepted, the request sent, the list, the other
// language, signed out at the provider. Every request outside 127.0.0.1 is
// blocked and recorded. With JavaScript on, axe-core runs on each portal
// page (evaluated through the DevTools protocol, which the page's CSP does
// not govern), and each step is screenshotted. Writes one JSON object to
// REPORT: the steps (name, URL, language, axe violations), the console
// errors, and the requests outside. Used by tests/portal_browser.rs.
//
// With FLOW=operator, an RA operator's part instead: the queue filtered by
// state, the request with its documents, the review started, his approval.
//
//     node flow.mjs BASE REQUEST_ID LOGIN ACR SCREENSHOT_DIR REPORT JS(on|off)
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const [base, givenRequest, login, acr, shots, report, js] = process.argv.slice(2);
// The operator's request is given; the RCCS's is the one his order makes.
let requestId = givenRequest;
const javaScript = js === "on";
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
});
const steps = [];
const errors = [];
const outside = [];
try {
  const context = await browser.newContext({
    viewport: { width: 1100, height: 900 },
    javaScriptEnabled: javaScript,
    locale: "fr-FR",
  });
  await context.route("**/*", (route) => {
    const target = new URL(route.request().url());
    if (target.hostname === "127.0.0.1") return route.continue();
    outside.push(target.href);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`${page.url()}: ${message.text()}`);
  });
  const step = async (name) => {
    const entry = { name, url: page.url(), lang: await page.getAttribute("html", "lang"), violations: [] };
    if (javaScript && page.url().startsWith(base)) {
      await page.evaluate(axeSource);
      const result = await page.evaluate(() =>
        // eslint-disable-next-line no-undef
        axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
      );
      entry.violations = result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
      entry.passes = result.passes.length;
    }
    await page.screenshot({ path: `${shots}/${String(steps.length + 1).padStart(2, "0")}-${name}.png`, fullPage: true });
    steps.push(entry);
  };

  const signIn = async () => {
    await page.getByRole("link", { name: /test-id/ }).click();
    await step("provider-login");
    await page.fill("#login", login);
    await page.selectOption("#acr", acr);
    await page.getByRole("button", { name: "Sign in" }).click();
  };
  if (process.env.FLOW === "operator") {
    await page.goto(`${base}/portal/requests`);
    await step("sign-in-needed");
    await signIn();
    await page.waitForURL(`${base}/portal/requests`);
    await step("queue");
    await page.selectOption("#state", "submitted");
    await page.getByRole("button", { name: "Filtrer" }).click();
    await page.waitForURL(/state=submitted/);
    await step("queue-submitted");
    await page.locator(`a[href="/portal/requests/${requestId}"]`).click();
    await step("dossier");
    await page.fill("#birth_date", "1980-02-29");
    await page.getByRole("button", { name: "Enregistrer la vérification" }).click();
    await page.waitForURL(/done=identity/);
    await step("identity-recorded");
    await page.getByRole("button", { name: "Commencer l'instruction" }).click();
    await page.waitForURL(/done=start_review/);
    await step("in-review");
    await page.getByRole("button", { name: "Approuver" }).click();
    await page.waitForURL(/done=approve/);
    await step("approved");
    await page.getByRole("link", { name: "English" }).click();
    await step("approved-en");
  } else {
    await rccs(page, step, signIn);
  }
} catch (error) {
  errors.push(`flow: ${error.message}`);
  try {
    const [page] = browser.contexts()[0]?.pages() ?? [];
    if (page) await page.screenshot({ path: `${shots}/failed.png`, fullPage: true });
  } catch {}
} finally {
  writeFileSync(report, JSON.stringify({ steps, errors, outside, request: requestId }));
  await browser.close();
}

// The RCCS's part: the order in seven steps, the evidence uploaded, the
// terms accepted, the request sent. The files come from FILES_DIR.
async function rccs(page, step, signIn) {
  await page.goto(`${base}/portal/order`);
  await step("sign-in-needed");
  await signIn();
  await page.waitForURL(`${base}/portal/order`);
  await step("order-1");
  const next = async (name) => {
    await page.getByRole("button", { name: "Suivant" }).click();
    await page.waitForLoadState();
    await step(name);
  };
  await page.getByLabel(/seal-ca-managed/).check();
  await next("order-2");
  await page.fill("#siret", "732 829 320 00009");
  await page.fill("#email", "rccs@alpha.example");
  await page.fill("#email_confirm", "rccs@alpha.example");
  await next("order-3");
  await page.fill("#seal_name", "Alpha Factures seal");
  await next("order-4");
  await page.fill("#legal_form", "SA");
  await next("order-5");
  await page.fill("#legal_name", "Alpha Factures SA");
  await page.fill("#street", "1 rue de la Paix");
  await page.fill("#postal_code", "75002");
  await page.fill("#city", "Paris");
  await next("order-6");
  await page.fill("#rccs_given_name", "Camille");
  await page.fill("#rccs_family_name", "Rccs");
  await page.fill("#legal_given_name", "Louise");
  await page.fill("#legal_family_name", "Legal");
  await page.fill("#legal_email", "legal@alpha.example");
  await next("order-7");
  await next("order-summary");
  await page.getByRole("button", { name: "Enregistrer la demande" }).click();
  await page.waitForURL(/done=order/);
  requestId = new URL(page.url()).pathname.split("/").pop();
  await step("request-draft");
  for (const [kind, file] of [["identity_document", "id.jpg"], ["registry_extract", "kbis.pdf"], ["mandate", "mandate.png"]]) {
    await page.selectOption("#kind", kind);
    await page.setInputFiles("#file", `${process.env.FILES_DIR}/${file}`);
    await page.getByRole("button", { name: "Ajouter la pièce" }).click();
    await page.waitForURL(/done=upload/);
  }
  await step("documents-added");
  await page.getByLabel(/J'ai lu et j'accepte/).check();
  await page.getByRole("button", { name: "Accepter les conditions" }).click();
  await page.waitForURL(/done=terms/);
  await step("terms-accepted");
  await page.getByRole("button", { name: "Envoyer la demande" }).click();
  await page.waitForURL(/done=submit/);
  await step("request-sent");
  await page.getByRole("link", { name: "Demandes", exact: true }).click();
  await step("requests");
  await page.getByRole("link", { name: "English" }).click();
  await step("requests-en");
  await page.locator(`a[href="/portal/requests/${requestId}"]`).click();
  await step("request-en");
  await page.getByRole("link", { name: "Home" }).click();
  await step("home-en");
  await page.getByRole("button", { name: "Sign out" }).click();
  // The provider asks to confirm the sign-out, then comes back.
  const confirm = page.getByRole("button", { name: /yes/i });
  if (await confirm.count()) {
    await step("provider-sign-out");
    await confirm.first().click();
  }
  await page.waitForURL(`${base}/portal`);
  await step("signed-out");
}
