//! [`PasswordPool`]: argon2id hashing and verification on a few dedicated
//! threads behind a bounded queue.
//!
//! Why not `spawn_blocking`: argon2id is memory-hard (19 MiB per check with
//! the default parameters). Sixteen connections sending wrong passwords
//! kept up to 512 blocking threads hashing at once, and glibc kept each
//! thread's arena: RSS went from 12 MB to 2.56 GB and never came back.
//! Here at most `workers` checks run at once, each on a thread that owns
//! one argon2 memory block, allocated at its first check and reused (argon2's own
//! `hash_password` allocates per call, and even two threads doing that
//! kept ~90 MB each), so the work costs `workers` × 19 MiB, flat.
//!
//! Invariants: at most `workers` hashes are computed at a time; at most
//! `queue` wait; a job beyond that is refused at once ([`Busy`]) instead
//! of waiting or allocating. A worker thread never panics on input
//! (argon2 errors are answers), and one dropped reply loses nothing.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

/// How many password checks may run and wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordLimits {
    /// Threads hashing passwords; 0 = one per available core.
    pub workers: usize,
    /// Checks waiting for a thread; beyond this a login or sign-up gets
    /// 503 with `Retry-After` at once.
    pub queue: usize,
}

impl Default for PasswordLimits {
    fn default() -> Self {
        PasswordLimits {
            workers: 0,
            queue: 16,
        }
    }
}

/// The pool refused a job: every thread is busy and the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks are in progress; retry shortly")]
pub struct Busy;

enum Job {
    Hash(String, oneshot::Sender<Option<String>>),
    Verify(String, String, oneshot::Sender<bool>),
}

/// Cheap to clone; the threads end when the last clone is dropped.
#[derive(Clone)]
pub struct PasswordPool {
    jobs: Arc<SyncSender<Job>>,
}

impl std::fmt::Debug for PasswordPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordPool")
    }
}

impl PasswordPool {
    pub fn new(limits: PasswordLimits) -> PasswordPool {
        let workers = match limits.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (tx, rx) = sync_channel::<Job>(limits.queue);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || {
                    let mut worker = Worker::new();
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => worker.run(job),
                            Err(_) => return, // every sender dropped
                        }
                    }
                })
                .expect("spawning a password thread at start (the OS refused a thread)");
        }
        PasswordPool { jobs: Arc::new(tx) }
    }

    fn submit(&self, job: Job) -> Result<(), Busy> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }

    /// A PHC string of `password` with a fresh salt; `None` if argon2
    /// refused the input (it never does for 8-128 characters).
    pub async fn hash(&self, password: String) -> Result<Option<String>, Busy> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Hash(password, tx))?;
        rx.await.map_err(|_| Busy)
    }

    /// Whether `password` matches the PHC string `stored`.
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, Busy> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Verify(password, stored, tx))?;
        rx.await.map_err(|_| Busy)
    }
}

/// The most memory one check may use: four times the default cost, so a
/// stored hash made with somewhat stronger parameters still verifies but a
/// crafted one cannot make a thread allocate without bound.
const MAX_BLOCKS: usize = 4 * Params::DEFAULT_M_COST as usize;

/// One password thread's state: the argon2 memory, allocated once and
/// reused by every check (argon2's own `hash_password` allocates 19 MiB
/// per call, and the allocator kept that memory per thread).
struct Worker {
    blocks: Vec<Block>,
}

impl Worker {
    fn new() -> Worker {
        // Allocated at the first check, so idle threads cost nothing.
        Worker { blocks: Vec::new() }
    }

    fn run(&mut self, job: Job) {
        match job {
            Job::Hash(password, reply) => {
                let _ = reply.send(self.hash(password.as_bytes()));
            }
            Job::Verify(password, stored, reply) => {
                let _ = reply.send(self.verify(password.as_bytes(), &stored));
            }
        }
    }

    fn memory(&mut self, params: &Params) -> Option<&mut [Block]> {
        let need = params.block_count();
        if need > MAX_BLOCKS {
            return None;
        }
        if self.blocks.len() < need {
            self.blocks.resize(need, Block::default());
        }
        Some(&mut self.blocks[..need])
    }

    /// A PHC string with a fresh salt and the default argon2id parameters.
    fn hash(&mut self, password: &[u8]) -> Option<String> {
        let params = Params::DEFAULT;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).ok()?;
        let memory = self.memory(&params)?;
        let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
            argon
                .hash_password_into_with_memory(password, salt_bytes, out, &mut *memory)
                .map_err(password_hash::Error::from)
        })
        .ok()?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).ok()?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Some(phc.to_string())
    }

    /// Whether `password` matches the PHC string `stored` (compared in
    /// constant time); a malformed or over-costly `stored` never does.
    fn verify(&mut self, password: &[u8], stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let (Ok(algorithm), Ok(params)) = (
            Algorithm::try_from(parsed.algorithm),
            Params::try_from(&parsed),
        ) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let mut salt_bytes = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
            return false;
        };
        let argon = Argon2::new(algorithm, version, params.clone());
        let Some(memory) = self.memory(&params) else {
            return false;
        };
        let mut out = [0u8; Output::MAX_LENGTH];
        let out = &mut out[..expected.len()];
        argon
            .hash_password_into_with_memory(password, salt_bytes, out, memory)
            .is_ok()
            && Output::new(out).is_ok_and(|got| got == expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let pool = PasswordPool::new(PasswordLimits {
            workers: 1,
            queue: 4,
        });
        let stored = pool.hash("correct horse".into()).await.unwrap().unwrap();
        assert!(pool
            .verify("correct horse".into(), stored.clone())
            .await
            .unwrap());
        assert!(!pool.verify("wrong horse".into(), stored).await.unwrap());
        assert!(!pool
            .verify("x".into(), "not a phc string".into())
            .await
            .unwrap());
    }

    /// Hashes made by argon2's own API (accounts created before the pool
    /// reused its memory) still verify, and ours verify with argon2's.
    #[tokio::test]
    async fn hashes_interoperate_with_argon2s_own_api() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let pool = PasswordPool::new(PasswordLimits {
            workers: 1,
            queue: 4,
        });
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(pool
            .verify("correct horse".into(), theirs.clone())
            .await
            .unwrap());
        assert!(!pool.verify("wrong horse".into(), theirs).await.unwrap());
        let ours = pool.hash("correct horse".into()).await.unwrap().unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        // A stored hash demanding 1 GiB is refused, not computed.
        let costly = ours.replace("m=19456", "m=1048576");
        assert!(!pool.verify("correct horse".into(), costly).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let pool = PasswordPool::new(PasswordLimits {
            workers: 1,
            queue: 1,
        });
        // One running, one waiting, the rest refused without waiting.
        let jobs: Vec<_> = (0..8)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.hash(format!("password-{i}")).await })
            })
            .collect();
        let mut busy = 0;
        for job in jobs {
            if job.await.unwrap().is_err() {
                busy += 1;
            }
        }
        assert!(busy >= 5, "{busy} of 8 refused");
    }
}
