//! Work shared out over a few threads, results kept in their inputs' order.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `each` over `items` on up to `threads` threads, the next item going to the first
/// thread free; returns what each call gave, in the items' order. Items of very different
/// sizes (files, rule groups) keep every thread busy, and a result never depends on how the
/// items were shared out. A panic in `each` is resumed on the calling thread.
pub fn map_ordered<I: Sync, T: Send>(items: &[I], threads: usize, each: impl Fn(&I) -> T + Sync) -> Vec<T> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(each).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break done };
                        done.push((i, each(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_whatever_the_threads() {
        let items: Vec<u64> = (0..500).collect();
        // Uneven work: some items take far longer than others.
        let slow = |i: &u64| -> u64 {
            let mut x = *i;
            for _ in 0..(i % 7) * 2_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            std::hint::black_box(x);
            i * 3
        };
        let expected: Vec<u64> = items.iter().map(|i| i * 3).collect();
        for threads in [0, 1, 2, 3, 8, 1000] {
            assert_eq!(map_ordered(&items, threads, slow), expected, "{threads} threads");
        }
        assert!(map_ordered(&[] as &[u64], 4, slow).is_empty());
    }

    #[test]
    fn every_thread_takes_part_when_there_is_work_for_it() {
        let items: Vec<usize> = (0..64).collect();
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        map_ordered(&items, 2, |_| {
            seen.lock().unwrap().insert(std::thread::current().id());
            std::thread::sleep(std::time::Duration::from_millis(2));
        });
        assert_eq!(seen.into_inner().unwrap().len(), 2);
    }

    #[test]
    #[should_panic(expected = "item 7")]
    fn a_panic_reaches_the_caller() {
        let items: Vec<usize> = (0..20).collect();
        map_ordered(&items, 2, |i| assert_ne!(*i, 7, "item 7"));
    }
}
