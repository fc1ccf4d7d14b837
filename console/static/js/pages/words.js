// Sensitive words: test a sentence (hits highlighted), search, add, remove, import.
import { api } from "../api.js";
import { clear, errorText, field, h, table, toast } from "../dom.js";
import { t, tOr } from "../i18n.js";
import { can, session } from "../session.js";
import { importReport, uploadTable } from "../upload.js";

const CATEGORIES = ["custom", "politics", "porn", "violence", "fraud", "abuse", "competitor"];
const ACTIONS = ["block", "mask", "flag"];

function highlighted(text, hits) {
  const out = h("p", { class: "tested", id: "word-test-text" });
  let at = 0;
  for (const hit of [...hits].sort((a, b) => a.start - b.start)) {
    if (hit.start < at) continue;
    out.append(text.slice(at, hit.start), h("mark", { class: "hit", title: `${hit.term} · ${tOr(`category.${hit.category}`, hit.category)}`, text: text.slice(hit.start, hit.end) }));
    at = hit.end;
  }
  out.append(text.slice(at));
  return out;
}

export async function render(root) {
  const staff = session.user.role !== "client";
  const writable = can("words.write");
  root.append(h("h1", { i18n: "words.title" }));

  // test a sentence
  const sentence = h("textarea", { id: "word-test", rows: 2 });
  const result = h("div", { id: "word-test-result" });
  const testForm = h("form", { class: "card", id: "word-test-form" }, h("h2", { i18n: "words.test" }), field("words.sentence", sentence),
    h("button", { type: "submit", class: "primary", i18n: "words.test_button" }), result);
  testForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(result);
    try {
      const res = await api("POST", "/api/words/test", { body: { text: sentence.value } });
      result.append(h("p", { class: res.blocked ? "bad" : "ok", id: "word-verdict", text: res.blocked ? t("words.blocked") : (res.hits.length ? t("words.hits", { n: res.hits.length }) : t("words.clean")) }),
        highlighted(sentence.value, res.hits));
      if (res.hits.length) result.append(h("p", { class: "muted", text: `${t("words.masked")}: ${res.masked_text}` }));
    } catch (err) { result.textContent = errorText(err); }
  });
  root.append(testForm);

  // list, search, remove
  const q = h("input", { id: "word-q", type: "search", "aria-label": t("common.search") });
  const global = h("input", { type: "checkbox", id: "word-global" });
  const listBox = h("div", { id: "word-list" });
  const load = async () => {
    clear(listBox);
    try {
      const res = await api("GET", "/api/words", { query: { q: q.value, global: global.checked ? "true" : undefined, limit: 100 } });
      listBox.append(table([
        { label: "words.term", key: "term" },
        { label: "words.category", render: (r) => tOr(`category.${r.category}`, r.category) },
        { label: "words.severity", key: "severity" },
        { label: "words.action", render: (r) => tOr(`action.${r.action}`, r.action) },
        { label: "words.scope", render: (r) => r.tenant || t("common.global") },
        { label: "common.remove", render: (r) => {
          if (!writable) return "";
          const b = h("button", { type: "button", class: "link danger", text: t("common.remove") });
          b.addEventListener("click", async () => {
            try { await api("DELETE", "/api/words", { query: { term: r.term, global: r.tenant ? undefined : "true" } }); await load(); }
            catch (err) { toast(errorText(err), "error"); }
          });
          return b;
        } },
      ], res.items));
    } catch (err) { listBox.textContent = errorText(err); }
  };
  const search = h("form", { class: "row" }, q, staff ? h("label", {}, global, " ", t("common.global")) : null,
    h("button", { type: "submit", i18n: "common.search" }));
  search.addEventListener("submit", (e) => { e.preventDefault(); load(); });

  if (writable) {
    const term = h("input", { id: "word-term", required: true });
    const category = h("select", { id: "word-category" }, CATEGORIES.map((c) => h("option", { value: c, text: tOr(`category.${c}`, c) })));
    const action = h("select", { id: "word-action" }, ACTIONS.map((a) => h("option", { value: a, text: tOr(`action.${a}`, a) })));
    const status = h("div", { class: "form-error", role: "alert" });
    const add = h("form", { class: "inline-form card", id: "word-add" }, h("h2", { i18n: "words.add" }),
      field("words.term", term), field("words.category", category), field("words.action", action), status,
      h("button", { type: "submit", class: "primary", i18n: "common.add" }));
    add.addEventListener("submit", async (e) => {
      e.preventDefault();
      status.textContent = "";
      try {
        await api("POST", "/api/words", { body: { term: term.value, category: category.value, action: action.value } });
        term.value = "";
        await load();
      } catch (err) { status.textContent = errorText(err); }
    });
    const file = h("input", { type: "file", id: "word-file", accept: ".csv,.txt,.tsv,.xlsx" });
    const report = h("div");
    const imp = h("form", { class: "inline-form card", id: "word-import" }, h("h2", { i18n: "words.import" }),
      h("p", { class: "muted", i18n: "words.import_help" }), field("import.file", file),
      h("button", { type: "submit", i18n: "common.import" }), report);
    imp.addEventListener("submit", async (e) => {
      e.preventDefault();
      clear(report);
      if (!file.files[0]) return;
      try { report.append(importReport(await uploadTable("/api/words/import", file.files[0]))); await load(); }
      catch (err) { report.textContent = errorText(err); }
    });
    root.append(add, imp);
  }
  root.append(h("h2", { i18n: "words.list" }), search, listBox);
  await load();
}
