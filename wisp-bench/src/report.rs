//! Output: Markdown tables on stdout (so a run's output is its own results file) and one JSON
//! object per measurement, appended to a file when asked.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;

/// Where JSON lines go, if anywhere.
static JSON: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Appends JSON lines to `path` from now on.
pub fn json_to(path: Option<PathBuf>) {
    *JSON.lock().unwrap_or_else(|e| e.into_inner()) = path;
}

/// Records one measurement as a JSON line (and nothing else if no file was given).
pub fn record(value: &impl Serialize) {
    let Some(path) = JSON.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
        return;
    };
    let Ok(line) = serde_json::to_string(value) else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// A Markdown table built row by row.
#[derive(Debug, Default)]
pub struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(head: &[&str]) -> Self {
        Self {
            head: head.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the table to stdout, padded so that it also reads well as plain text.
    pub fn print(&self) {
        let n = self.head.len();
        let mut width = vec![3; n];
        for r in std::iter::once(&self.head).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, w) in width.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                s.push_str(&format!(" {c:<w$} |"));
            }
            s
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", line(&self.head));
        let sep: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "{}", line(&sep));
        for r in &self.rows {
            let _ = writeln!(out, "{}", line(r));
        }
        let _ = writeln!(out);
    }
}

/// A number with sensible precision for a table, or "–" when absent.
pub fn num(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if !v.is_finite() => "–".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// A ratio `a / b`, as "0.93×".
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}
