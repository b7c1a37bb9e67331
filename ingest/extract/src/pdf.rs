//! PDF text, page by page.
//!
//! pdf-extract panics on many real PDFs and can overflow its stack, which no `catch_unwind`
//! survives. So it never runs in the indexing process: a helper child process (our own binary,
//! `rag extract-pdf FILE`) runs it under a timeout, and poppler's `pdftotext` is tried next.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

use super::{ExtractError, Extracted, Page};

/// How PDFs are extracted: which helper to run and how long to let it try.
#[derive(Debug, Clone)]
pub struct PdfExtractor {
    /// Program and leading arguments of the isolated pdf-extract helper; the PDF's path is
    /// appended. `None` skips it (poppler only).
    pub helper: Option<Vec<String>>,
    /// poppler's `pdftotext`; `None` disables the fallback.
    pub pdftotext: Option<PathBuf>,
    pub timeout: Duration,
}

impl PdfExtractor {
    /// The helper is this very executable (`rag extract-pdf`), so a single binary ships.
    pub fn with_current_exe(timeout: Duration) -> Self {
        let helper = std::env::current_exe()
            .ok()
            .map(|exe| vec![exe.to_string_lossy().into_owned(), "extract-pdf".to_owned()]);
        Self {
            helper,
            pdftotext: Some(PathBuf::from("pdftotext")),
            timeout,
        }
    }

    pub fn extract(&self, bytes: &[u8], path: Option<&Path>) -> Result<Extracted, ExtractError> {
        // The header may sit anywhere in the first kilobyte.
        if !bytes[..bytes.len().min(1024)]
            .windows(5)
            .any(|w| w == b"%PDF-")
        {
            return Err(ExtractError::Pdf("no PDF header: not a PDF file".into()));
        }
        // The helpers read a path; bytes that arrived over the network are staged first.
        let staged;
        let path = match path {
            Some(p) => p,
            None => {
                staged = stage(bytes).map_err(|e| ExtractError::Pdf(format!("staging: {e}")))?;
                staged.path()
            }
        };

        let mut reasons = Vec::new();
        // Extractors that ran and found no text: an image-only PDF, unless one of them failed.
        let mut textless = 0;
        let mut ran = 0;
        if let Some(helper) = &self.helper {
            ran += 1;
            match self.run_helper(helper, path) {
                Ok(pages) if has_text(&pages) => return Ok(paged(pages)),
                Ok(_) => textless += 1,
                Err(e) => reasons.push(format!("pdf-extract: {e}")),
            }
        }
        if let Some(pdftotext) = &self.pdftotext {
            ran += 1;
            match self.run_pdftotext(pdftotext, path) {
                Ok(pages) if has_text(&pages) => return Ok(paged(pages)),
                Ok(_) => textless += 1,
                Err(e) => reasons.push(format!("pdftotext: {e}")),
            }
        }
        if ran == 0 {
            return Err(ExtractError::Pdf("no PDF extractor configured".into()));
        }
        // Both readers failing on a file with an encryption dictionary means a password is
        // needed (PDFs encrypted with an empty user password are read fine above).
        if contains(bytes, b"/Encrypt") && textless == 0 {
            return Err(ExtractError::Encrypted);
        }
        if textless == ran {
            return Err(ExtractError::ImageOnly);
        }
        let tail = &bytes[bytes.len().saturating_sub(1024)..];
        if !contains(tail, b"%%EOF") {
            reasons.insert(
                0,
                "the file is truncated (no %%EOF marker at its end)".into(),
            );
        }
        Err(ExtractError::Pdf(reasons.join("; ")))
    }

    fn run_helper(&self, helper: &[String], path: &Path) -> Result<Vec<String>, String> {
        let (program, args) = helper.split_first().ok_or("empty helper command")?;
        let mut cmd = Command::new(program);
        cmd.args(args).arg(path);
        let out = run_with_timeout(cmd, self.timeout)?;
        let pages: HelperOutput =
            serde_json::from_slice(&out).map_err(|e| format!("helper output: {e}"))?;
        Ok(pages.pages)
    }

    fn run_pdftotext(&self, pdftotext: &Path, path: &Path) -> Result<Vec<String>, String> {
        let mut cmd = Command::new(pdftotext);
        cmd.args(["-q", "-enc", "UTF-8"]).arg(path).arg("-");
        let out = run_with_timeout(cmd, self.timeout)?;
        let text = String::from_utf8_lossy(&out);
        // pdftotext ends every page with a form feed.
        let mut pages: Vec<String> = text.split('\u{c}').map(str::to_owned).collect();
        if pages.last().is_some_and(|p| p.trim().is_empty()) {
            pages.pop();
        }
        Ok(pages)
    }
}

/// What `rag extract-pdf` prints on stdout.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct HelperOutput {
    pub pages: Vec<String>,
}

/// The body of `rag extract-pdf`: runs pdf-extract in this (disposable) process.
pub fn extract_in_this_process(path: &Path) -> Result<HelperOutput, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let pages = pdf_extract::extract_text_from_mem_by_pages(&bytes).map_err(|e| e.to_string())?;
    Ok(HelperOutput { pages })
}

fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Vec<u8>, String> {
    // Output goes to temporary files rather than pipes: a large document would fill a pipe and
    // stall the child while we wait for it to exit.
    let mut stdout = tempfile::tempfile().map_err(|e| e.to_string())?;
    let mut stderr = tempfile::tempfile().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(stdout.try_clone().map_err(|e| e.to_string())?)
        .stderr(stderr.try_clone().map_err(|e| e.to_string())?);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let status = match child.wait_timeout(timeout).map_err(|e| e.to_string())? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {} s", timeout.as_secs_f32()));
        }
    };
    if !status.success() {
        let mut err = String::new();
        let _ = stderr.seek(SeekFrom::Start(0));
        let _ = stderr.take(4096).read_to_string(&mut err);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("{status} {last}").trim().to_owned());
    }
    let mut out = Vec::new();
    stdout.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    stdout.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn stage(bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new().suffix(".pdf").tempfile()?;
    file.write_all(bytes)?;
    file.flush()?;
    Ok(file)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn has_text(pages: &[String]) -> bool {
    pages.iter().any(|p| !p.trim().is_empty())
}

fn paged(pages: Vec<String>) -> Extracted {
    Extracted {
        title: None,
        pages: pages
            .into_iter()
            .enumerate()
            .map(|(i, text)| Page {
                number: i as u32 + 1,
                text,
            })
            .collect(),
    }
}
