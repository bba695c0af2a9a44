//! The pod is the fencing authority: a claim a failed-over Redis made on a
//! seat the pod holds is refused ("seat taken, claim again"), and the
//! pod's lease is put back over it.

#[allow(dead_code)]
#[path = "support/pods.rs"]
mod pods;

use std::sync::atomic::Ordering;

use pods::{
    claim_after_failover, config, wait_until, Pod, FAILED_OVER_TOKEN, HEARTBEAT_SLACK, SEATS_A,
};
use seatkeeper_pool::{claim, Refusal, TokenProblem};
use seatkeeper_testkit::redis::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_token_for_a_held_seat_is_refused_and_the_lease_reasserted() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let a = Pod::start(config(&url, "pod-a", 1)).await;
    let held = a
        .agent
        .redeem(&claim(&url).await.unwrap().seat_token)
        .await
        .unwrap();

    // What a replica that missed the redeem would say after a failover:
    // slot 0 is claimed again, under a newer epoch, for another token.
    let (mut conn, _) = claim_after_failover(&url, held.epoch() + 100).await;
    let (token, seats) = (FAILED_OVER_TOKEN, SEATS_A);

    assert_eq!(
        a.agent.redeem(token).await.unwrap_err(),
        Refusal::BadSeatToken(TokenProblem::SeatTaken)
    );
    assert_eq!(a.agent.metrics().seat_taken.load(Ordering::Relaxed), 1);
    // The next heartbeat puts the first session's lease back, and moves
    // the epoch counter past everything seen.
    let want = format!("h:{}:", held.epoch());
    wait_until(HEARTBEAT_SLACK, "lease re-asserted", || {
        let mut conn = conn.clone();
        let want = want.clone();
        async move {
            let v: Option<String> = redis::cmd("HGET")
                .arg(seats)
                .arg(0)
                .query_async(&mut conn)
                .await
                .unwrap();
            v.is_some_and(|v| v.starts_with(&want))
        }
    })
    .await;
    let epoch: u64 = redis::cmd("GET")
        .arg("seatkeeper:pool:epoch")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(epoch > held.epoch(), "{epoch}");
    // The first session still holds its seat: no claim finds it free.
    assert!(claim(&url).await.is_err());
    drop(held);
}
