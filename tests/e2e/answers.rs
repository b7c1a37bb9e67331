//! Answers a person can trust, asked as a company bot's users ask: paraphrases of what the
//! sample documents say are answered from the right page over gRPC and HTTP, questions the
//! documents do not answer are refused, and a Korean question gets a Korean answer with checked
//! citations. The default chat model (Qwen2.5-Coder 1.5B), greedy.

use rag_proto::v1 as pb;
use serde_json::json;

use crate::client::ask;
use crate::harness::Workspace;
use crate::http::sse;

/// Paraphrases from `benches/eval/sample-paraphrases.jsonl` (none of them in the documents'
/// words; the first was refused before the retrieval floor was lowered), the page that answers
/// each and what the answer must state.
const PARAPHRASES: &[(&str, &str, &str)] = &[
    (
        "How many vacation days do I get per year?",
        "handbook/leave-policy.md",
        "25",
    ),
    (
        "How much paid time off do I have?",
        "handbook/leave-policy.md",
        "25",
    ),
    (
        "How much can I spend on a hotel room in Paris?",
        "finance/expense-policy.pdf",
        "250",
    ),
];

/// On a CPU the first token waits for the model to read its sources: a long page is shown to
/// it as the sentences that answer, and the client is sent exactly what the model read.
#[tokio::test(flavor = "multi_thread")]
async fn the_model_reads_the_sentences_that_answer_not_the_whole_page() {
    let ws = Workspace::new();
    ws.with_default_chat_model();
    ws.index_samples();
    let server = ws.serve().await;
    let page = std::fs::read_to_string(ws.docs().join("handbook/leave-policy.md")).unwrap();

    let asked = ask(&server, "Until when must carried-over leave days be taken?").await;
    let shown = &asked.sources[0].chunk.as_ref().unwrap();
    assert_eq!(shown.source_path, "handbook/leave-policy.md");
    assert!(shown.text.contains("31 March"), "{:?}", shown.text);
    let pieces: Vec<&str> = shown.text.split(" … ").collect();
    for piece in &pieces {
        assert!(page.contains(piece), "not the page's own words: {piece:?}");
    }
    assert!(
        !shown.text.contains("Sick leave") && !shown.text.contains("Parental leave"),
        "the sections about something else are left out: {:?}",
        shown.text
    );
    // The whole passage retrieval found is longer than what the model read.
    let found = server
        .client()
        .search(pb::SearchRequest {
            query: "Until when must carried-over leave days be taken?".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.chunks[0].source_path, "handbook/leave-policy.md");
    assert!(
        found.chunks[0].text.len() > shown.text.len(),
        "{:?}",
        found.chunks[0].text
    );

    let a = &asked.answer;
    assert_eq!(a.status, pb::AnswerStatus::Answered as i32, "{a:?}");
    assert!(a.text.contains("31 March"), "{a:?}");
    assert_eq!(a.citations[0].source_path, "handbook/leave-policy.md");
}

#[tokio::test(flavor = "multi_thread")]
async fn paraphrased_questions_are_answered_from_the_right_page_over_grpc_and_http() {
    let ws = Workspace::new();
    ws.with_default_chat_model();
    ws.index_samples();
    let server = ws.serve_http().await;

    for &(question, page, fact) in PARAPHRASES {
        let asked = ask(&server, question).await;
        let a = &asked.answer;
        assert_eq!(
            a.status,
            pb::AnswerStatus::Answered as i32,
            "{question}: {a:?}"
        );
        let cited: Vec<&str> = a.citations.iter().map(|c| c.source_path.as_str()).collect();
        assert!(!cited.is_empty(), "{question}: no citation in {a:?}");
        assert!(
            cited.iter().all(|c| *c == page),
            "{question}: cites {cited:?}, not only {page}: {a:?}"
        );
        assert!(
            a.text.contains(fact),
            "{question}: {:?} lacks {fact}",
            a.text
        );

        let events = sse(&server, "/v1/ask", None, json!({ "question": question })).await;
        let answer = &events.last().expect("events").data;
        assert_eq!(
            answer["status"], "answered",
            "{question} over HTTP: {answer}"
        );
        let cited: Vec<&str> = answer["citations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["source_path"].as_str().unwrap())
            .collect();
        assert!(
            !cited.is_empty() && cited.iter().all(|c| *c == page),
            "{question} over HTTP cites {cited:?}: {answer}"
        );
        assert!(answer["text"].as_str().unwrap().contains(fact), "{answer}");
    }

    // Near the documents' topics, but not in them: refused, not answered from a neighbour.
    for question in [
        "Is there a gym membership benefit?",
        "What is the capital of Australia?",
    ] {
        let a = ask(&server, question).await.answer;
        assert_ne!(
            a.status,
            pb::AnswerStatus::Answered as i32,
            "{question}: {a:?}"
        );
        assert!(a.citations.is_empty(), "{question}: {a:?}");
    }
}

/// Mostly Hangul (numbers, codes and citations aside).
fn korean(text: &str) -> bool {
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let hangul = letters
        .iter()
        .filter(|c| ('\u{AC00}'..='\u{D7A3}').contains(*c))
        .count();
    hangul * 2 > letters.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_korean_question_gets_a_korean_answer_from_korean_or_english_pages() {
    korean_answers(Workspace::multilingual(), &[]).await;
    // Out-of-corpus Korean questions are not asserted here: the multilingual model places them
    // as close to the pages as answerable ones, and some near the pages' topics are answered
    // (BENCHMARKS.md, ninth session).
}

/// The README's configuration, untouched: the English-only model with the question searched in
/// English by its translation, the Korean page found by the question's words. Questions about
/// what no page mentions are refused, although a page states the number the model answers with
/// (the all-hands notes' "3,000 euros" and the core hours' "10:00" were shown as the parking
/// fee and the gym's opening time before the support check held the page to the question).
#[tokio::test(flavor = "multi_thread")]
async fn a_korean_question_gets_a_korean_answer_with_the_default_configuration() {
    korean_answers(
        Workspace::new(),
        &[
            "회사 주차 요금은 얼마인가요?",
            "사내 헬스장은 몇 시에 여나요?",
        ],
    )
    .await;
}

/// Asks the Korean questions the sample documents answer, then `out_of_corpus` ones they do not.
async fn korean_answers(ws: Workspace, out_of_corpus: &[&str]) {
    ws.with_default_chat_model();
    ws.index_samples();
    let server = ws.serve().await;
    for (question, page, fact) in [
        // Answered by the Korean benefits page.
        (
            "결혼하면 경조금을 얼마 받아요?",
            "handbook/복지-안내.md",
            "50",
        ),
        // Answered by the English leave policy: the answer is Korean all the same.
        ("연차는 며칠 받나요?", "handbook/leave-policy.md", "25"),
    ] {
        let asked = ask(&server, question).await;
        let a = &asked.answer;
        assert_eq!(
            a.status,
            pb::AnswerStatus::Answered as i32,
            "{question}: {a:?}"
        );
        assert!(
            korean(&a.text),
            "{question}: not a Korean answer: {:?}",
            a.text
        );
        assert!(
            a.text.contains(fact),
            "{question}: {:?} lacks {fact}",
            a.text
        );
        let cited: Vec<&str> = a.citations.iter().map(|c| c.source_path.as_str()).collect();
        assert!(
            !cited.is_empty() && cited.iter().all(|c| *c == page),
            "{question}: cites {cited:?}, not {page}"
        );
        if page != "handbook/leave-policy.md" {
            continue;
        }
        // The model reads the English page's sentences that answer, not the whole passage: with
        // the English-only model they are chosen by the question's English translation. Within
        // the default cap of 96 tokens, so fewer words than that.
        let shown = asked
            .sources
            .iter()
            .filter_map(|s| s.chunk.as_ref())
            .find(|c| c.source_path == page)
            .unwrap_or_else(|| panic!("{question}: {page} not among the sources"));
        assert!(shown.text.contains(fact), "{question}: {:?}", shown.text);
        assert!(
            shown.text.split_whitespace().count() <= 96,
            "{question}: shown whole: {:?}",
            shown.text
        );
    }
    for question in out_of_corpus {
        let a = ask(&server, question).await.answer;
        assert_ne!(
            a.status,
            pb::AnswerStatus::Answered as i32,
            "{question}: answered {:?}",
            a.text
        );
        assert!(
            korean(&a.text) && a.citations.is_empty(),
            "{question}: the refusal is not said in Korean: {a:?}"
        );
    }
    assert!(server.stop().success());
}
