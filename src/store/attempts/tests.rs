//! The in-memory attempt store: windows, bounds, reservations, overflow prefixes.

use super::*;

#[tokio::test]
async fn windows_count_and_expire() {
    let s = MemoryAttemptStore::new();
    assert_eq!(s.failures("a").await.unwrap(), None);
    let w = Duration::from_millis(50);
    assert_eq!(s.record_failure("a", w).await.unwrap().count, 1);
    assert_eq!(s.record_failure("a", w).await.unwrap().count, 2);
    assert_eq!(s.failures("a").await.unwrap().unwrap().count, 2);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(s.failures("a").await.unwrap(), None);
    assert_eq!(
        s.record_failure("a", w).await.unwrap().count,
        1,
        "a new window"
    );
}

#[tokio::test]
async fn memory_stays_bounded_whatever_the_number_of_clients() {
    let s = MemoryAttemptStore::with_capacity(1000);
    for i in 0..50_000u32 {
        s.record_failure(
            &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    }
    assert!(s.len() <= 1000, "{}", s.len());
}

#[tokio::test]
async fn reservations_count_before_and_refunds_give_back() {
    let s = MemoryAttemptStore::new();
    let w = Duration::from_secs(60);
    for _ in 0..3 {
        assert_eq!(s.reserve("a", w, 3).await.unwrap(), Reservation::Reserved);
    }
    let Reservation::Refused(a) = s.reserve("a", w, 3).await.unwrap() else {
        panic!("the fourth is refused while three are in flight")
    };
    assert_eq!(a.count, 3);
    s.refund("a").await.unwrap();
    assert_eq!(s.reserve("a", w, 3).await.unwrap(), Reservation::Reserved);
    for _ in 0..10 {
        s.refund("a").await.unwrap();
    }
    assert_eq!(
        s.failures("a").await.unwrap().unwrap().count,
        0,
        "never below zero"
    );
    s.refund("unknown").await.unwrap();
}

#[tokio::test]
async fn a_locked_client_is_never_evicted_to_make_room() {
    let s = MemoryAttemptStore::with_capacity(100);
    let w = Duration::from_secs(300);
    for _ in 0..3 {
        assert_eq!(
            s.reserve("198.51.100.66", w, 3).await.unwrap(),
            Reservation::Reserved
        );
    }
    // An address-rich attacker churns 10,000 fresh keys through the store.
    for i in 0..10_000u32 {
        let key = format!("2001:db8:{:x}:{:x}::/64", i >> 8, i & 255);
        let _ = s.reserve(&key, w, 3).await.unwrap();
    }
    assert!(
        matches!(
            s.reserve("198.51.100.66", w, 3).await.unwrap(),
            Reservation::Refused(_)
        ),
        "the locked counter survived"
    );
    assert!(s.len() <= 100 + 12, "{}", s.len());
}

#[tokio::test]
async fn when_every_counter_is_locked_new_clients_share_their_prefix() {
    let s = MemoryAttemptStore::with_capacity(16); // overflow: 2 prefixes
    let w = Duration::from_secs(300);
    let lock = |key: String| {
        let s = s.clone();
        async move {
            for _ in 0..3 {
                let _ = s.reserve(&key, w, 3).await.unwrap();
            }
        }
    };
    for i in 0..16 {
        lock(format!("10.0.0.{i}")).await;
    }
    // The store is full of locked clients; a new one from the flood's /24 is counted
    // in that prefix and locks it.
    lock("10.0.0.200".to_owned()).await;
    assert!(matches!(
        s.reserve("10.0.0.201", w, 3).await.unwrap(),
        Reservation::Refused(_)
    ));
    // A new client elsewhere has its own prefix counter: not locked out by the flood.
    assert_eq!(
        s.reserve("203.0.113.5", w, 3).await.unwrap(),
        Reservation::Reserved
    );
    s.refund("203.0.113.5").await.unwrap();
    assert_eq!(
        s.reserve("203.0.113.5", w, 3).await.unwrap(),
        Reservation::Reserved
    );
    // Clients already counted keep their own counters.
    assert!(matches!(
        s.reserve("10.0.0.3", w, 3).await.unwrap(),
        Reservation::Refused(_)
    ));
    assert!(s.len() <= 18, "{}", s.len());
}

#[test]
fn overflow_prefixes_are_ipv4_24_and_ipv6_48() {
    assert_eq!(prefix_key("192.0.2.77"), "192.0.2.0/24");
    assert_eq!(prefix_key("2001:db8:1:2::/64"), "2001:db8:1::/48");
    assert_eq!(prefix_key("cert:abcdef"), "*");
}

#[tokio::test]
async fn a_store_full_of_locked_clients_stays_cheap_for_new_ones() {
    let s = MemoryAttemptStore::with_capacity(10_000);
    let w = Duration::from_secs(300);
    for i in 0..10_000u32 {
        let key = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        assert_eq!(s.record_failure(&key, w).await.unwrap().count, 1);
        let _ = s.reserve(&key, w, 1).await.unwrap();
    }
    let started = Instant::now();
    for i in 0..50_000u32 {
        let key = format!("2001:db8:{:x}:{:x}::/64", i >> 8, i & 255);
        let _ = s.reserve(&key, w, 1).await.unwrap();
    }
    // No scan of the 10,000 locked entries per new key (that took seconds).
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(s.len() <= 10_000 + 1_250, "{}", s.len());
}
