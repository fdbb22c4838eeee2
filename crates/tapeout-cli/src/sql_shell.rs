//! The statement loop behind `tapeout sql`: splits what the user typed, piped or wrote in a
//! file into statements (sqlparser's tokenizer, so a `;` in a string or a comment does not end
//! one), runs them, answers the backslash commands, and in the interactive shell lets Ctrl-C
//! cancel the running query.
//!
//! Scripts (`-f`, piped input, `-c`) stop at the first failing statement unless
//! `continue_on_error`; an unterminated last statement of a file or of piped input is an error.

use std::fmt::Display;
use std::time::Instant;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer, TokenizerError};
use futures::StreamExt;
use tapeout_engine::LakeSession;

use crate::sql_cmd::{Output, describe, print_result};

/// What the backslash commands do, for `\?`.
pub const HELP: &str = "\
  \\?, \\h            this help
  \\d                list the tables
  \\d TABLE          the columns of TABLE
  \\timing [on|off]  print each statement's elapsed time (without an argument: toggle)
  \\maxrows [N]      rows printed per result, 0 = all (without N: show the limit)
  \\q                quit (also Ctrl-D)
SQL statements end with `;` and may span lines. Ctrl-C cancels a running query, or clears the
statement being typed.
";

/// One complete statement (or the unterminated rest) of a piece of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Byte range in the text, the `;` included.
    pub start: usize,
    pub end: usize,
    /// Byte offset of its first token that is not whitespace or a comment.
    pub first: usize,
}

/// `text` split at the `;` tokens.
#[derive(Debug)]
pub struct Split {
    /// The complete statements (statements holding only comments are left out).
    pub complete: Vec<Piece>,
    /// What follows the last `;`, unless it is only whitespace and comments.
    pub rest: Option<Piece>,
    /// Byte offset where the rest begins (the end of the last complete statement).
    pub rest_start: usize,
    /// Why the rest could not be tokenized (an unterminated string, quoted name or comment).
    pub error: Option<TokenizerError>,
}

/// Splits `text` into statements at the `;` tokens of DataFusion's (generic) SQL dialect.
pub fn split(text: &str) -> Split {
    let mut tokens = Vec::new();
    let error = Tokenizer::new(&GenericDialect {}, text).tokenize_with_location_into_buf(&mut tokens).err();
    let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let mut complete = Vec::new();
    let (mut start, mut first) = (0, None);
    for t in &tokens {
        match &t.token {
            Token::SemiColon => {
                let end = byte_offset(text, &line_starts, t.span.end);
                if let Some(first) = first {
                    complete.push(Piece { start, end, first });
                }
                (start, first) = (end, None);
            }
            Token::Whitespace(_) | Token::EOF => {}
            _ if first.is_none() => first = Some(byte_offset(text, &line_starts, t.span.start)),
            _ => {}
        }
    }
    let rest = match (first, &error) {
        (Some(first), _) => Some(Piece { start, end: text.len(), first }),
        (None, Some(_)) => {
            let first = start + (text[start..].len() - text[start..].trim_start().len());
            Some(Piece { start, end: text.len(), first })
        }
        (None, None) => None,
    };
    Split { complete, rest, rest_start: start, error }
}

/// How many statements `text` holds (an unterminated last one included).
pub fn statement_count(text: &str) -> usize {
    let split = split(text);
    split.complete.len() + usize::from(split.rest.is_some())
}

/// The byte offset of a tokenizer location (1-based line and column, columns in characters).
fn byte_offset(text: &str, line_starts: &[usize], loc: Location) -> usize {
    let Some(&line) = line_starts.get((loc.line as usize).saturating_sub(1)) else {
        return text.len();
    };
    let column = (loc.column as usize).saturating_sub(1);
    text[line..].char_indices().nth(column).map_or(text.len(), |(i, _)| line + i)
}

/// An error and those causes of it that its message does not already repeat (DataFusion's
/// errors wrap each other with the same text).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// The first line of a statement, shortened, for error messages.
fn snippet(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim_end();
    match line.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

/// How one statement or command ended.
enum Outcome {
    Done,
    Failed,
    Cancelled,
    Quit,
}

/// Whether the caller should keep feeding lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Go,
    Stop,
}

/// Feeds lines to the session: statements run as soon as their `;` arrives.
pub struct Shell<'a> {
    session: &'a LakeSession,
    out: Output,
    interactive: bool,
    /// The file (or `stdin`) the lines come from, for error messages.
    source: Option<String>,
    /// Whether errors say which statement failed (not for a lone statement, nor interactively).
    name_statements: bool,
    continue_on_error: bool,
    /// Text of the statement being read; never only whitespace and comments.
    buf: String,
    /// Line number of `buf`'s first line.
    buf_line: usize,
    /// Lines fed so far.
    lines: usize,
    statements: usize,
    commands: usize,
    failed: usize,
}

impl<'a> Shell<'a> {
    /// An interactive shell: errors are printed and the shell goes on; Ctrl-C cancels.
    pub fn interactive(session: &'a LakeSession, out: Output) -> Self {
        Self::new(session, out, true, None, true)
    }

    /// A script: `source` names it in error messages (None for `-c`).
    pub fn script(session: &'a LakeSession, out: Output, source: Option<String>, continue_on_error: bool) -> Self {
        Self::new(session, out, false, source, continue_on_error)
    }

    fn new(
        session: &'a LakeSession,
        out: Output,
        interactive: bool,
        source: Option<String>,
        continue_on_error: bool,
    ) -> Self {
        Shell {
            session,
            out,
            interactive,
            source,
            name_statements: !interactive,
            continue_on_error,
            buf: String::new(),
            buf_line: 1,
            lines: 0,
            statements: 0,
            commands: 0,
            failed: 0,
        }
    }

    pub fn session(&self) -> &'a LakeSession {
        self.session
    }

    /// Errors print as they are, without naming the statement (a one-statement query).
    pub fn plain_errors(mut self) -> Self {
        self.name_statements = false;
        self
    }

    /// Whether a statement is partly typed (the shell prompts for its continuation).
    pub fn pending(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Forgets the statement being typed (Ctrl-C at the prompt).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The exit code so far: 1 once a statement failed.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.failed > 0)
    }

    /// With `continue_on_error`, says how many statements failed (each said why already).
    pub fn summary(&self) {
        if self.continue_on_error && !self.interactive && self.failed > 0 {
            let (failed, of) = (self.failed, self.statements + self.commands);
            eprintln!("error: {failed} of {of} statements and commands failed");
        }
    }

    /// Feeds every line, then ends the script ([`Shell::finish`]) unless it stopped early;
    /// the exit code.
    pub async fn run_lines(
        &mut self,
        lines: impl Iterator<Item = std::io::Result<String>>,
        allow_unterminated: bool,
    ) -> anyhow::Result<u8> {
        for line in lines {
            let line =
                line.map_err(|e| anyhow::anyhow!("reading {}: {e}", self.source.as_deref().unwrap_or("input")))?;
            if self.feed(&line).await == Flow::Stop {
                return Ok(self.exit_code());
            }
        }
        self.finish(allow_unterminated).await;
        Ok(self.exit_code())
    }

    /// Feeds one line (without its newline): a backslash command, or SQL text whose completed
    /// statements run now.
    pub async fn feed(&mut self, line: &str) -> Flow {
        self.lines += 1;
        if self.buf.is_empty() {
            if let Some(cmd) = line.trim_start().strip_prefix('\\') {
                let outcome = self.command(cmd.trim());
                return self.after(outcome);
            }
            self.buf_line = self.lines;
        }
        self.buf.push_str(line);
        self.buf.push('\n');
        let text = std::mem::take(&mut self.buf);
        let split = split(&text);
        for piece in &split.complete {
            self.statements += 1;
            let outcome = self.execute(&text, *piece).await;
            if matches!(outcome, Outcome::Cancelled) {
                return Flow::Go; // the rest of what was typed is dropped too
            }
            if self.after(outcome) == Flow::Stop {
                return Flow::Stop;
            }
        }
        if split.rest.is_some() {
            self.buf_line += text[..split.rest_start].matches('\n').count();
            self.buf = text[split.rest_start..].to_string();
        }
        Flow::Go
    }

    /// Ends the input: a pending statement runs if `allow_unterminated` (a query given on the
    /// command line), else it is an error.
    pub async fn finish(&mut self, allow_unterminated: bool) {
        let text = std::mem::take(&mut self.buf);
        let split = split(&text);
        let Some(rest) = split.rest else { return };
        self.statements += 1;
        if allow_unterminated {
            let outcome = self.execute(&text, rest).await;
            self.after(outcome);
            return;
        }
        let why = match &split.error {
            Some(e) => format!("is not terminated by `;` ({e})"),
            None => "is not terminated by `;`; it was not run".to_string(),
        };
        self.fail_statement(&text, rest, " ", &why);
    }

    fn after(&mut self, outcome: Outcome) -> Flow {
        match outcome {
            Outcome::Quit => Flow::Stop,
            Outcome::Failed if !self.continue_on_error => Flow::Stop,
            _ => Flow::Go,
        }
    }

    /// `statement 2 at q.sql:3 (`select …`): ERR` (`sep` is `": "`, or `" "` when `err` is
    /// a predicate such as "is not terminated…"), or just the error in the interactive shell.
    fn fail_statement(&mut self, text: &str, piece: Piece, sep: &str, err: &dyn Display) {
        self.failed += 1;
        if !self.name_statements {
            eprintln!("error: {err}");
            return;
        }
        let line = self.buf_line + text[..piece.first].matches('\n').count();
        let at = match &self.source {
            Some(s) => format!("{s}:{line}"),
            None => format!("line {line}"),
        };
        let what = snippet(&text[piece.first..piece.end]);
        eprintln!("error: statement {} at {at} (`{what}`){sep}{err}", self.statements);
    }

    /// Runs one statement; in the interactive shell, Ctrl-C cancels it (dropping the query's
    /// stream stops DataFusion's tasks).
    async fn execute(&mut self, text: &str, piece: Piece) -> Outcome {
        let sql = &text[piece.start..piece.end];
        let started = Instant::now();
        let result = if self.interactive {
            tokio::select! {
                r = run_statement(self.session, sql, &self.out) => r,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("cancelled (Ctrl-C) after {:.3} s", started.elapsed().as_secs_f64());
                    return Outcome::Cancelled;
                }
            }
        } else {
            run_statement(self.session, sql, &self.out).await
        };
        match result {
            Ok(()) => {
                if self.out.timing {
                    eprintln!("Time: {:.3} s", started.elapsed().as_secs_f64());
                }
                Outcome::Done
            }
            Err(e) => {
                self.fail_statement(text, piece, ": ", &error_text(&e));
                Outcome::Failed
            }
        }
    }

    /// A backslash command (without the backslash).
    fn command(&mut self, cmd: &str) -> Outcome {
        self.commands += 1;
        let mut words = cmd.split_whitespace();
        let (name, arg) = (words.next().unwrap_or(""), words.next());
        let result: anyhow::Result<()> = match (name, arg) {
            ("q" | "quit", None) => return Outcome::Quit,
            ("?" | "h" | "help", None) => {
                print!("{HELP}");
                Ok(())
            }
            ("d", t) => describe(self.session, t).map(|s| print!("{s}")),
            ("timing", a) => match a {
                None => Ok(!self.out.timing),
                Some("on") => Ok(true),
                Some("off") => Ok(false),
                Some(other) => Err(anyhow::anyhow!("`\\timing {other}`: expected on or off")),
            }
            .map(|on| {
                self.out.timing = on;
                eprintln!("Timing is {}.", if on { "on" } else { "off" });
            }),
            ("maxrows", None) => {
                match self.out.maxrows {
                    Some(n) => eprintln!("maxrows is {n}"),
                    None => eprintln!("maxrows is 0 (all rows)"),
                }
                Ok(())
            }
            ("maxrows", Some(n)) => match n.parse::<usize>() {
                Ok(n) => {
                    self.out.maxrows = (n > 0).then_some(n);
                    Ok(())
                }
                Err(_) => Err(anyhow::anyhow!("`\\maxrows {n}`: expected a number of rows (0 = all)")),
            },
            _ => Err(anyhow::anyhow!("unknown command `\\{cmd}`; \\? lists the commands")),
        };
        match result {
            Ok(()) => Outcome::Done,
            Err(e) => {
                self.failed += 1;
                let e = error_text(&e);
                match (&self.source, self.interactive) {
                    (_, true) => eprintln!("error: {e}"),
                    (Some(s), false) => eprintln!("error: `\\{cmd}` at {s}:{}: {e}", self.lines),
                    (None, false) => eprintln!("error: `\\{cmd}` at line {}: {e}", self.lines),
                }
                Outcome::Failed
            }
        }
    }
}

/// Plans and runs one statement, printing its result; rows past the limit are counted, not kept.
async fn run_statement(session: &LakeSession, sql: &str, out: &Output) -> anyhow::Result<()> {
    for statement in session.parse_script(sql)? {
        let df = session.statement(statement).await?;
        let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        let mut stream = df.execute_stream().await?;
        let limit = out.maxrows.unwrap_or(usize::MAX);
        let (mut kept, mut shown, mut total) = (Vec::new(), 0usize, 0usize);
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let take = batch.num_rows().min(limit - shown);
            if take > 0 {
                kept.push(batch.slice(0, take));
                shown += take;
            }
            total += batch.num_rows();
        }
        print_result(schema, kept, total, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> (Vec<&str>, Option<&str>) {
        let s = split(text);
        (s.complete.iter().map(|p| &text[p.first..p.end]).collect(), s.rest.map(|p| &text[p.first..p.end]))
    }

    #[test]
    fn splits_at_semicolons_outside_strings_and_comments() {
        let t = "select 'a;b' as x; -- c;\n/* d; */ select \"e;\" from t;\n  select 3";
        assert_eq!(texts(t), (vec!["select 'a;b' as x;", "select \"e;\" from t;"], Some("select 3")));
        assert_eq!(texts("select 1;\n-- only a comment\n  \n"), (vec!["select 1;"], None));
        assert_eq!(texts(";;select 1;;"), (vec!["select 1;"], None));
        assert_eq!(texts("select 'é;ü', 2;x"), (vec!["select 'é;ü', 2;"], Some("x")));
    }

    #[test]
    fn an_unterminated_string_or_comment_is_a_pending_rest() {
        let s = split("select 1; select 'abc;\n");
        assert_eq!(s.complete.len(), 1);
        assert!(s.rest.is_some() && s.error.is_some());
        let s = split("select 1; /* open");
        assert_eq!(s.complete.len(), 1);
        assert!(s.rest.is_some() && s.error.is_some());
    }

    #[test]
    fn snippets_are_first_lines_shortened() {
        assert_eq!(snippet("select 1\nfrom t;"), "select 1");
        assert_eq!(snippet(&"x".repeat(80)), format!("{}…", "x".repeat(60)));
    }
}
