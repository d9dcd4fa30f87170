//! Whole statements: stacked after `;`, DDL, and data statements standing alone.

use super::lexer::{Kw, Stmt, Tok};
use super::{at, comparison, select_shape};

/// `ALTER TABLE `t` ...`, `CREATE TABLE t (`, `DROP TABLE t;`: DDL, told from English ("drop
/// table tennis") by SQL syntax around the table name.
pub(super) fn ddl(s: &[Tok], i: usize) -> bool {
    if at(s, i + 1) != Some(Tok::Kw(Kw::Table)) {
        return false;
    }
    match at(s, i + 2) {
        Some(Tok::QuotedIdent) => true,
        Some(Tok::Word) => matches!(
            at(s, i + 3),
            Some(Tok::LParen | Tok::Semi | Tok::Dot | Tok::QuotedIdent)
        ),
        _ => false,
    }
}

/// `DELETE FROM users;`, `UPDATE users SET admin=1`, `INSERT INTO t VALUES`: a whole data
/// statement, told from English ("delete from my list") by the SQL that completes it.
pub(super) fn dml(s: &[Tok], i: usize) -> bool {
    let table_end = |k: usize| {
        let mut e = k;
        while matches!(at(s, e), Some(Tok::Word | Tok::QuotedIdent | Tok::Dot)) {
            e += 1;
        }
        // `INSERT INTO t (a, b)`: a name right before `(` reads as a call
        if at(s, e) == Some(Tok::Call) && at(s, e + 1) == Some(Tok::LParen) {
            e += 1;
        }
        (e > k).then_some(e)
    };
    match s[i] {
        Tok::Stmt(Stmt::Delete) => {
            at(s, i + 1) == Some(Tok::Kw(Kw::From))
                && table_end(i + 2).is_some_and(|e| match at(s, e) {
                    // `;` ending the value (or before a comment) or starting another statement
                    Some(Tok::Semi) => at(s, e + 1).is_none() || stacked(s, e + 1),
                    Some(Tok::Kw(Kw::Where)) => comparison(s, e + 1).is_some(),
                    _ => false,
                })
        }
        Tok::Stmt(Stmt::Update) => table_end(i + 1).is_some_and(|e| {
            at(s, e) == Some(Tok::Kw(Kw::Set))
                && comparison(s, e + 1).is_some_and(|c| {
                    matches!(
                        at(s, c),
                        None | Some(Tok::Semi | Tok::Comma | Tok::Kw(Kw::Where))
                    )
                })
        }),
        Tok::Stmt(Stmt::Insert) => {
            at(s, i + 1) == Some(Tok::Kw(Kw::Into))
                && table_end(i + 2).is_some_and(|e| {
                    matches!(at(s, e), Some(Tok::Kw(Kw::Values)))
                        || (at(s, e) == Some(Tok::LParen)
                            && matches!(at(s, e + 1), Some(Tok::Word | Tok::QuotedIdent))
                            && matches!(at(s, e + 2), Some(Tok::Comma | Tok::RParen)))
                })
        }
        _ => false,
    }
}

/// A statement after `;` that changes data or runs code.
pub(super) fn stacked(s: &[Tok], j: usize) -> bool {
    match at(s, j) {
        Some(Tok::Select) => {
            select_shape(s, j) || matches!(at(s, j + 1), Some(Tok::Num | Tok::Str { .. }))
        }
        Some(Tok::Stmt(st)) => stmt_follows(s, j, st),
        Some(Tok::Kw(Kw::Set)) => at(s, j + 1) == Some(Tok::Var),
        _ => false,
    }
}

pub(super) fn stmt_follows(s: &[Tok], j: usize, st: Stmt) -> bool {
    let next = at(s, j + 1);
    match st {
        Stmt::Insert => next == Some(Tok::Kw(Kw::Into)),
        Stmt::Update => {
            let mut k = j + 1;
            while matches!(at(s, k), Some(Tok::Word | Tok::Dot)) {
                k += 1;
            }
            k > j + 1 && at(s, k) == Some(Tok::Kw(Kw::Set))
        }
        Stmt::Delete => next == Some(Tok::Kw(Kw::From)),
        Stmt::Drop | Stmt::Create | Stmt::Alter | Stmt::Truncate => matches!(
            next,
            Some(Tok::Kw(Kw::Table | Kw::Database | Kw::Procedure))
        ),
        Stmt::Exec => matches!(
            next,
            Some(
                Tok::Word
                    | Tok::Var
                    | Tok::Func(_)
                    | Tok::Call
                    | Tok::LParen
                    | Tok::Str { .. }
                    | Tok::SysObject
            )
        ),
        Stmt::Declare => next == Some(Tok::Var),
        Stmt::Shutdown => matches!(next, None | Some(Tok::Semi | Tok::Word)),
        Stmt::Waitfor => matches!(next, Some(Tok::Kw(Kw::Delay) | Tok::Word)),
        Stmt::Grant => matches!(next, Some(Tok::Word | Tok::Kw(Kw::All))),
        // `; PRINT @@version`
        Stmt::Print => next == Some(Tok::Var),
    }
}
