// Import files (CSV/TXT/XLSX) the way the API takes them: the raw bytes, typed by extension.
import { api } from "./api.js";
import { h, table } from "./dom.js";
import { t } from "./i18n.js";

const TYPES = { csv: "text/csv", txt: "text/plain", tsv: "text/tab-separated-values",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" };

export async function uploadTable(path, file, query) {
  const ext = (file.name.split(".").pop() || "").toLowerCase();
  const raw = await file.arrayBuffer();
  return api("POST", path, { raw, contentType: TYPES[ext] || "application/octet-stream", query });
}

/** "imported N of M rows" and one line per bad row: line, column, value, why. */
export function importReport(res) {
  return h("div", { class: "import-report", id: "import-report" },
    h("p", { class: res.error_count ? "bad" : "ok", text: t("import.summary", { imported: res.imported, rows: res.rows, errors: res.error_count }) }),
    res.errors.length ? table([
      { label: "import.line", key: "line" }, { label: "import.column", key: "column" },
      { label: "import.value", key: "value" }, { label: "import.message", key: "message" },
    ], res.errors) : null);
}
