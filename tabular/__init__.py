"""Reading the spreadsheets users upload: CSV/TSV/text in any encoding their tools write, and
.xlsx; header rows in Chinese or English mapped to the caller's columns; every bad row reported
with file, line, column and reason; streaming; a preview before anything is applied.

A bottom-layer package (imports nothing of the project): compliance lists and words, campaign
contacts and inspection rules all import through it.
"""

from tabular.sources import TableError, cell_text
from tabular.spec import Column, ColumnSpec, header_key
from tabular.table import (
    CellError,
    Preview,
    Row,
    RowError,
    Table,
    TableInfo,
    open_table,
    preview,
    read_table,
)

__all__ = [
    "CellError", "Column", "ColumnSpec", "Preview", "Row", "RowError", "Table", "TableError",
    "TableInfo", "cell_text", "header_key", "open_table", "preview", "read_table",
]
