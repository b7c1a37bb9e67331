//! The chat page in a real browser: Debian's chromium, headless, driven over WebDriver
//! (chromium-driver, installed by scripts/setup.sh). A user asks, sees tokens arrive and the
//! source card, clicks a citation and a source, asks a follow-up, gives feedback; the interface
//! follows the browser's language and fits a phone. A failing step leaves a screenshot in
//! `target/tmp/browser-artifacts/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::harness::Workspace;

/// chromedriver on a free loopback port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program(env: &str, names: &[&str]) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return path.into();
    }
    for name in names {
        for dir in ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"] {
            let path = PathBuf::from(dir).join(name);
            if path.is_file() {
                return path;
            }
        }
    }
    panic!(
        "{names:?} not found (set {env}); scripts/setup.sh installs chromium and chromium-driver"
    )
}

fn start_driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(program("CHROMEDRIVER", &["chromedriver"]))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A fresh headless browser (its own profile) speaking `lang`, `width` × `height`; a phone's
/// screen (touch, device pixels) when `phone`.
async fn browser(
    driver: &Driver,
    profile: &std::path::Path,
    lang: &str,
    size: (u32, u32),
    phone: bool,
) -> Client {
    let mut options = json!({
            "binary": program("CHROMIUM", &["chromium", "chromium-browser"]),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.display()),
                format!("--lang={lang}"),
                format!("--window-size={},{}", size.0, size.1),
            ],
            "prefs": {"intl.accept_languages": lang},
    });
    if phone {
        options["mobileEmulation"] = json!({
            "deviceMetrics": {"width": size.0, "height": size.1, "pixelRatio": 2.0, "touch": true},
        });
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

type Step = Result<(), String>;

fn ensure(ok: bool, what: impl std::fmt::Display) -> Step {
    if ok { Ok(()) } else { Err(what.to_string()) }
}

fn cmd<T>(r: Result<T, impl std::fmt::Debug>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e:?}"))
}

/// Runs `steps`; on failure saves a screenshot named `name` and fails the test with the step's
/// message.
/// (The last screen of a passing run is kept too, to look at.)
async fn run(client: &Client, name: &str, steps: impl std::future::Future<Output = Step>) {
    let result = steps.await;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    let shot = dir.join(format!("{name}.png"));
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(&shot, png);
    }
    if let Err(e) = result {
        panic!("{e}\n(screenshot: {})", shot.display());
    }
}

async fn text(client: &Client, css: &str) -> Result<String, String> {
    let el = cmd(client.find(Locator::Css(css)).await, css)?;
    cmd(el.text().await, css)
}

/// The text of each source card of the `turn`th turn (from 1).
async fn card_texts(client: &Client, turn: usize) -> Result<Vec<String>, String> {
    let cards = script(
        client,
        &format!(
            "return [...document.querySelectorAll('#log > li:nth-child({turn}) .card')] \
               .map(c => c.textContent)"
        ),
    )
    .await?;
    serde_json::from_value(cards).map_err(|e| e.to_string())
}

async fn script(client: &Client, js: &str) -> Result<Value, String> {
    cmd(client.execute(js, vec![]).await, js)
}

/// Types `question`, sends it with Enter, and waits for its checked answer.
async fn ask(client: &Client, question: &str, turns_before: usize) -> Step {
    let input = cmd(client.find(Locator::Css("#question")).await, "#question")?;
    cmd(input.send_keys(question).await, "typing")?;
    cmd(input.send_keys("\u{E007}").await, "Enter")?;
    let done = format!(
        "#log > li.turn:nth-child({}) .answer[aria-busy=\"false\"]",
        turns_before + 1
    );
    cmd(
        client
            .wait()
            .at_most(Duration::from_secs(180))
            .for_element(Locator::Css(&done))
            .await,
        "the answer to finish",
    )?;
    Ok(())
}

#[tokio::test]
async fn the_chat_page_works_in_a_real_browser() {
    let ws = Workspace::new();
    ws.with_default_chat_model();
    ws.index_samples();
    let server = ws.serve_http().await;
    let page = server.http.clone().unwrap();
    let driver = start_driver();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path(), "en-US", (1200, 900), false).await;

    run(&client, "english", async {
        cmd(client.goto(&page).await, "opening the page")?;
        ensure(
            text(&client, "h1").await? == "Ask the documents",
            "English title",
        )?;
        // Counts what the answer showed while it was being generated.
        script(
            &client,
            "window.__shown = new Set(); new MutationObserver(() => { \
               const a = document.querySelector('#log > li:last-child .answer'); \
               if (a && a.getAttribute('aria-busy') === 'true' && a.textContent) \
                 window.__shown.add(a.textContent); \
             }).observe(document.getElementById('log'), \
               {subtree: true, childList: true, characterData: true});",
        )
        .await?;
        ask(&client, "What is the hotel limit per night in Paris?", 0).await?;
        let shown = script(&client, "return window.__shown.size").await?;
        ensure(
            shown.as_u64() > Some(2),
            format!("tokens arrived one by one: {shown}"),
        )?;
        let answer = text(&client, "#log > li:nth-child(1) .answer").await?;
        ensure(answer.contains("250"), format!("the answer: {answer:?}"))?;

        // The source card names the document.
        let cards = cmd(
            client
                .find_all(Locator::Css("#log > li:nth-child(1) .card"))
                .await,
            "cards",
        )?;
        ensure(!cards.is_empty(), "a source card")?;
        let card = cmd(cards[0].text().await, "card text")?;
        ensure(
            card.contains("expense-policy.pdf"),
            format!("card: {card:?}"),
        )?;

        // A citation lights up its source.
        let cite = cmd(
            client
                .find(Locator::Css("#log > li:nth-child(1) .cite"))
                .await,
            "a citation [n] in the answer",
        )?;
        let label = cmd(cite.text().await, "citation")?;
        cmd(cite.click().await, "clicking the citation")?;
        let n = label.trim_matches(|c| c == '[' || c == ']');
        let lit = cmd(
            client
                .find(Locator::Css(&format!(
                    "#log > li:nth-child(1) .card[data-n=\"{n}\"]"
                )))
                .await,
            "the cited card",
        )?;
        let class = cmd(lit.attr("class").await, "class")?.unwrap_or_default();
        ensure(
            class.contains("lit"),
            format!("the cited card is lit: {class:?}"),
        )?;

        // A source opens in its document's context.
        cmd(cards[0].click().await, "opening the source")?;
        let focus = cmd(
            client
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::Css("#viewer .ctx.focus"))
                .await,
            "the source viewer",
        )?;
        let shown = cmd(focus.text().await, "viewer text")?;
        ensure(shown.contains("Hotels"), format!("viewer: {shown:?}"))?;
        cmd(client.find(Locator::Css("#viewer-close")).await, "close")?
            .click()
            .await
            .map_err(|e| format!("closing: {e:?}"))?;

        // A follow-up: rewritten with the conversation, shown, answered.
        ask(&client, "What about London?", 1).await?;
        let rewrite = text(&client, "#log > li:nth-child(2) .rewrite").await?;
        ensure(
            rewrite.contains("London"),
            format!("the rewrite is shown: {rewrite:?}"),
        )?;
        let answer = text(&client, "#log > li:nth-child(2) .answer").await?;
        ensure(
            answer.contains("250"),
            format!("follow-up answer: {answer:?}"),
        )?;

        // Feedback with a comment, stored with the question.
        cmd(
            client
                .find(Locator::Css("#log > li:nth-child(2) .up"))
                .await,
            "thumbs up",
        )?
        .click()
        .await
        .map_err(|e| format!("{e:?}"))?;
        let comment = cmd(
            client
                .find(Locator::Css("#log > li:nth-child(2) .comment input"))
                .await,
            "comment",
        )?;
        cmd(comment.send_keys("right on").await, "comment")?;
        cmd(comment.send_keys("\u{E007}").await, "sending feedback")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while text(&client, "#log > li:nth-child(2) .thanks")
            .await?
            .is_empty()
        {
            ensure(Instant::now() < deadline, "feedback acknowledged")?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let stored = std::fs::read_to_string(ws.dir.path().join("data/feedback.jsonl"))
            .map_err(|e| format!("feedback file: {e}"))?;
        let record: Value = serde_json::from_str(stored.lines().last().unwrap_or("{}"))
            .map_err(|e| e.to_string())?;
        ensure(
            record["rating"] == "up"
                && record["comment"] == "right on"
                && record["question"] == "What about London?"
                && record["rewritten_question"]
                    .as_str()
                    .is_some_and(|q| q.contains("London")),
            format!("stored feedback: {record}"),
        )?;

        // Accessible: every control has a name, the input a label, the log is announced.
        let unnamed = script(
            &client,
            "return [...document.querySelectorAll('button, input, textarea')].filter(e => \
               !(e.textContent.trim() || e.getAttribute('aria-label') || \
                 (e.id && document.querySelector('label[for=\"' + e.id + '\"]')) || \
                 e.closest('label'))).length",
        )
        .await?;
        ensure(
            unnamed == json!(0),
            format!("controls without a name: {unnamed}"),
        )?;
        let live = script(
            &client,
            "return document.getElementById('log').getAttribute('aria-live')",
        )
        .await?;
        ensure(live == json!("polite"), "the conversation is a live region")?;

        // The feedback buttons draw their icons themselves (no emoji font on this machine).
        let icons = script(
            &client,
            "return [...document.querySelectorAll('#log > li:nth-child(2) .feedback .up, \
               #log > li:nth-child(2) .feedback .down')] \
               .map(b => { const s = b.querySelector('svg'); \
                 return s ? s.getBoundingClientRect().width : 0; })",
        )
        .await?;
        ensure(
            icons == json!([18, 18]),
            format!("thumbs up and down drawn as 18-pixel icons: {icons}"),
        )?;

        // A new conversation: a source card reads as text, not Markdown.
        cmd(client.find(Locator::Css("#new")).await, "new conversation")?
            .click()
            .await
            .map_err(|e| format!("{e:?}"))?;
        ask(
            &client,
            "How many days of paid annual leave do full-time employees get?",
            0,
        )
        .await?;
        let cards = card_texts(&client, 1).await?;
        ensure(
            cards.iter().any(|c| c.contains("leave-policy.md")),
            format!("the leave policy's card: {cards:?}"),
        )?;
        ensure(
            cards.iter().all(|c| !c.contains("# ") && !c.contains("**")),
            format!("cards without Markdown marks: {cards:?}"),
        )?;

        // A question the documents do not answer: said once, by the notice, not also by the
        // answer's text.
        ask(&client, "What is the capital of Australia?", 1).await?;
        let notice = text(&client, "#log > li:nth-child(2) .notice").await?;
        ensure(
            notice == "The documents don\u{2019}t say." || notice.starts_with("Withheld"),
            format!("the refusal's notice: {notice:?}"),
        )?;
        let said = script(
            &client,
            "const a = document.querySelector('#log > li:nth-child(2) .answer'); \
             const d = a.querySelector('details'); \
             return a.textContent.length - (d ? d.textContent.length : 0)",
        )
        .await?;
        ensure(
            said == json!(0),
            format!("the answer box repeats the refusal ({said} characters)"),
        )
    })
    .await;
    let _ = client.close().await;

    // Korean browser, phone-sized screen.
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path(), "ko-KR", (375, 740), true).await;
    run(&client, "korean-phone", async {
        cmd(client.goto(&page).await, "opening the page")?;
        ensure(
            text(&client, "h1").await? == "문서에 질문하기",
            "Korean title",
        )?;
        ensure(text(&client, "#send").await? == "질문", "Korean button")?;
        let fits = script(
            &client,
            "return document.documentElement.scrollWidth <= window.innerWidth",
        )
        .await?;
        ensure(fits == json!(true), "no sideways scrolling at phone width")?;
        let send = script(
            &client,
            "const r = document.getElementById('send').getBoundingClientRect(); \
             return r.width > 0 && r.right <= window.innerWidth",
        )
        .await?;
        ensure(send == json!(true), "the send button is on screen")?;
        let width = script(&client, "return window.innerWidth").await?;
        ensure(width == json!(375), format!("a phone's width: {width}"))
    })
    .await;
    let _ = client.close().await;
}

/// With keys on, the page asks without one and says so; the key entered in its settings is
/// kept in the browser and sent, and the same question is answered with its sources.
#[tokio::test]
async fn the_chat_page_sends_the_api_key_from_its_settings() {
    const KEY: &str = "browser-reader-key-0123456789";
    let ws = Workspace::new();
    ws.with_keys(&[("qa-bot", KEY, "reader")]);
    ws.index_samples();
    let server = ws.serve_http().await;
    let page = server.http.clone().unwrap();
    let driver = start_driver();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path(), "en-US", (1200, 900), false).await;
    let question = "What is the hotel limit per night in Paris?";

    run(&client, "api-key", async {
        cmd(client.goto(&page).await, "opening the page")?;

        // No key: the service's refusal is shown as an error naming the key; no sources.
        ask(&client, question, 0).await?;
        let error = text(&client, "#log > li:nth-child(1) .answer .error").await?;
        ensure(
            error.starts_with("Error: ") && error.contains("API key"),
            format!("the missing key is said: {error:?}"),
        )?;
        let cards = cmd(
            client
                .find_all(Locator::Css("#log > li:nth-child(1) .card"))
                .await,
            "cards",
        )?;
        ensure(cards.is_empty(), "no sources without a key")?;

        // The key, entered in the settings as a user would: open them, type, leave the field.
        let key = cmd(client.find(Locator::Css("#key")).await, "#key")?;
        ensure(
            !cmd(key.is_displayed().await, "#key shown")?,
            "the key field is folded away in the settings",
        )?;
        cmd(
            client.find(Locator::Css("#settings > summary")).await,
            "settings",
        )?
        .click()
        .await
        .map_err(|e| format!("opening the settings: {e:?}"))?;
        cmd(key.send_keys(KEY).await, "typing the key")?;
        cmd(key.send_keys("\u{E004}").await, "Tab out of the key")?;
        let stored = script(&client, "return localStorage.getItem('rag.key')").await?;
        ensure(
            stored == json!(KEY),
            format!("the key kept in the browser: {stored}"),
        )?;

        // The same question again: answered, with the document's source card.
        ask(&client, question, 1).await?;
        let errors = cmd(
            client
                .find_all(Locator::Css("#log > li:nth-child(2) .error"))
                .await,
            "errors",
        )?;
        ensure(errors.is_empty(), "no error with the key")?;
        let cards = card_texts(&client, 2).await?;
        ensure(
            cards.iter().any(|c| c.contains("expense-policy.pdf")),
            format!("the expense policy's card: {cards:?}"),
        )?;
        // The checked answer arrived: its sentences, or the notice of a refusal.
        let checked = script(
            &client,
            "const t = document.querySelector('#log > li:nth-child(2)'); \
             return !!t.querySelector('.answer .sentence') || !t.querySelector('.notice').hidden",
        )
        .await?;
        ensure(checked == json!(true), "the checked answer is shown")?;

        // A new visit finds the key where it was left.
        cmd(client.goto(&page).await, "opening the page again")?;
        let kept = script(&client, "return document.getElementById('key').value").await?;
        ensure(
            kept == json!(KEY),
            format!("the key field on a new visit: {kept}"),
        )
    })
    .await;
    let _ = client.close().await;
}
