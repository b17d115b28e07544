use super::*;

const BUDGET: u64 = 1_000_000;

fn op(client: usize, input: Input, output: Output, call: u64, ret: u64) -> Operation {
    Operation {
        key: 0,
        client,
        input,
        output,
        call,
        ret,
    }
}

fn read(value: Option<u64>, at: u64) -> Operation {
    op(99, Input::Read, Output::Value(value), at, at + 1)
}

fn rejected(history: &[Operation]) -> bool {
    matches!(
        check(history, BUDGET),
        Err(CheckError::NotLinearizable { .. })
    )
}

#[test]
fn sequential_history_is_linearizable() {
    let history = [
        op(0, Input::Create(1), Output::Ok, 0, 10),
        op(1, Input::Create(2), Output::NodeExists, 20, 30),
        op(0, Input::Set(3), Output::Ok, 40, 50),
        op(1, Input::Delete, Output::Ok, 60, 70),
        op(0, Input::Set(4), Output::NoNode, 80, 90),
        read(None, 100),
    ];
    assert_eq!(check(&history, BUDGET), Ok(()));
}

#[test]
fn concurrent_writes_may_linearize_either_way() {
    for winner in [1, 2] {
        let history = [
            op(0, Input::Create(0), Output::Ok, 0, 5),
            op(0, Input::Set(1), Output::Ok, 10, 30),
            op(1, Input::Set(2), Output::Ok, 15, 25),
            read(Some(winner), 40),
        ];
        assert_eq!(check(&history, BUDGET), Ok(()), "winner {winner}");
    }
}

#[test]
fn stale_final_value_is_rejected() {
    // set(1) finished before set(2) began, so the final value cannot be 1.
    let history = [
        op(0, Input::Create(0), Output::Ok, 0, 5),
        op(0, Input::Set(1), Output::Ok, 10, 20),
        op(1, Input::Set(2), Output::Ok, 30, 40),
        read(Some(1), 50),
    ];
    assert!(rejected(&history));
}

#[test]
fn two_successful_creates_without_a_delete_are_rejected() {
    let history = [
        op(0, Input::Create(1), Output::Ok, 0, 10),
        op(1, Input::Create(2), Output::Ok, 5, 15),
        read(Some(2), 50),
    ];
    assert!(rejected(&history));
}

#[test]
fn lost_acknowledged_write_is_rejected() {
    let history = [op(0, Input::Create(1), Output::Ok, 0, 10), read(None, 50)];
    assert!(rejected(&history));
}

#[test]
fn error_reply_must_match_the_state() {
    // The node exists from t=10 on, so a delete at [20, 30] cannot answer NoNode.
    let history = [
        op(0, Input::Create(1), Output::Ok, 0, 10),
        op(1, Input::Delete, Output::NoNode, 20, 30),
        read(Some(1), 50),
    ];
    assert!(rejected(&history));
}

#[test]
fn unknown_outcomes_may_or_may_not_take_effect() {
    let took_effect = [
        op(0, Input::Create(1), Output::Ok, 0, 10),
        op(1, Input::Set(2), Output::Unknown, 20, 0),
        read(Some(2), 50),
    ];
    assert_eq!(check(&took_effect, BUDGET), Ok(()));
    let did_not = [
        op(0, Input::Create(1), Output::Ok, 0, 10),
        op(1, Input::Set(2), Output::Unknown, 20, 0),
        read(Some(1), 50),
    ];
    assert_eq!(check(&did_not, BUDGET), Ok(()));
    // ...but never before its call.
    let too_early = [
        op(1, Input::Delete, Output::Unknown, 60, 0),
        op(0, Input::Create(1), Output::Ok, 0, 10),
        op(1, Input::Create(3), Output::NodeExists, 20, 30),
        op(0, Input::Set(2), Output::NoNode, 40, 45),
        read(None, 70),
    ];
    assert!(rejected(&too_early));
    // A value nobody wrote is never explained.
    let invented = [
        op(0, Input::Set(5), Output::Unknown, 0, 0),
        read(Some(6), 50),
    ];
    assert!(rejected(&invented));
}

#[test]
fn keys_are_checked_independently() {
    let mut history = vec![
        op(0, Input::Create(1), Output::Ok, 0, 10),
        read(Some(1), 50),
    ];
    let mut other = op(1, Input::Create(2), Output::Ok, 0, 10);
    other.key = 1;
    let mut other_read = read(None, 50);
    other_read.key = 1;
    history.push(other);
    assert_eq!(check(&history, BUDGET), Ok(()));
    history.push(other_read);
    assert!(matches!(
        check(&history, BUDGET),
        Err(CheckError::NotLinearizable { key: 1, .. })
    ));
}

#[test]
fn budget_exhaustion_is_inconclusive() {
    let history: Vec<Operation> = (0..20)
        .map(|i| op(i, Input::Set(i as u64), Output::Unknown, 0, 0))
        .chain([read(Some(99), 10)])
        .collect();
    assert!(matches!(
        check(&history, 10),
        Err(CheckError::Inconclusive { key: 0 })
    ));
}

#[test]
fn many_concurrent_unknowns_stay_tractable() {
    // 12 unknown sets and a read of one of them: memoisation keeps this small (unknown
    // outcomes still cost up to 2^n subsets, which is why the simulator also checks the
    // history with outcomes resolved from the committed log).
    let mut history: Vec<Operation> = vec![op(0, Input::Create(0), Output::Ok, 0, 1)];
    history.extend((1..=12).map(|i| op(i, Input::Set(i as u64), Output::Unknown, 2, 0)));
    history.push(read(Some(7), 100));
    assert_eq!(check(&history, BUDGET), Ok(()));
}
