//! A forward split over shards (`models/bert/tensor_parallel.rs`: each shard computes its rows
//! of every layer product and the shards swap parts four times per layer) gives the last hidden
//! state of one engine's forward bit for bit, in every shard, for 1 to 4 shards of 4 heads and
//! an intermediate size of 37 (uneven parts), BERT and DistilBERT; and refuses what it cannot do.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use webnlu::io::ModelFiles;
use webnlu::models::bert::tensor_parallel::{ShardExchange, ShardPlan};
use webnlu::models::{BertModel, EncoderInput, EncoderOutput, RunMode};
use webnlu::Device;

fn load(name: &str) -> BertModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/bert-reference/random")
        .join(name);
    BertModel::load(&ModelFiles::from_dir(&dir).unwrap(), &Device::Cpu).unwrap()
}

/// Two rows of different lengths (the second padded), ids inside every random vocabulary.
fn batch() -> EncoderInput {
    EncoderInput::from_ids(
        &Device::Cpu,
        &[
            vec![2, 5, 8, 31, 37, 5, 1, 67, 3],
            vec![2, 6, 48, 66, 60, 3, 7, 9, 3],
        ],
        &[vec![0, 0, 0, 0, 0, 1, 1, 1, 1], vec![0; 9]],
    )
    .unwrap()
}

/// The parts of every gather so far: `steps[n][shard]`.
type Mailbox = Rc<RefCell<Vec<Vec<Option<Vec<f32>>>>>>;

/// One shard's end of an in-process exchange (what the package's workers do with messages).
struct TestExchange {
    index: usize,
    count: usize,
    step: Cell<usize>,
    mailbox: Mailbox,
}

impl ShardExchange for TestExchange {
    fn all_gather(
        &self,
        part: Vec<f32>,
    ) -> Pin<Box<dyn Future<Output = webnlu::Result<Vec<Vec<f32>>>> + '_>> {
        let step = self.step.get();
        self.step.set(step + 1);
        {
            let mut steps = self.mailbox.borrow_mut();
            while steps.len() <= step {
                steps.push(vec![None; self.count]);
            }
            steps[step][self.index] = Some(part);
        }
        Box::pin(std::future::poll_fn(move |_| {
            let steps = self.mailbox.borrow();
            match steps[step].iter().cloned().collect::<Option<Vec<_>>>() {
                Some(parts) => Poll::Ready(Ok(parts)),
                None => Poll::Pending,
            }
        }))
    }
}

/// Runs the futures together on this thread (polled in turn until all are done).
fn run_together<T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    let mut context = Context::from_waker(Waker::noop());
    for _round in 0..100_000 {
        for (future, result) in futures.iter_mut().zip(&mut results) {
            if result.is_none() {
                if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
                    *result = Some(value);
                }
            }
        }
        if results.iter().all(Option::is_some) {
            return results.into_iter().map(Option::unwrap).collect();
        }
    }
    panic!("the shards never finished (a gather waited for a part that never came)");
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn sharded_forward_is_bit_identical_to_one_engine_in_every_shard() {
    for name in ["bert-random", "distilbert-random"] {
        let input = batch();
        let whole = load(name).encode(&input, &RunMode::inference()).unwrap();
        let expected = bits(&whole.hidden.to_vec_blocking().unwrap());
        for count in 1..=4 {
            let models: Vec<BertModel> = (0..count)
                .map(|index| {
                    let mut model = load(name);
                    model
                        .prepare_shards(ShardPlan::new(index, count).unwrap())
                        .unwrap();
                    model
                })
                .collect();
            let mailbox = Mailbox::default();
            let exchanges: Vec<TestExchange> = (0..count)
                .map(|index| TestExchange {
                    index,
                    count,
                    step: Cell::new(0),
                    mailbox: mailbox.clone(),
                })
                .collect();
            let futures = models
                .iter()
                .zip(&exchanges)
                .map(|(model, exchange)| {
                    Box::pin(model.encode_sharded(&input, exchange))
                        as Pin<Box<dyn Future<Output = webnlu::Result<EncoderOutput>>>>
                })
                .collect();
            for (shard, out) in run_together(futures).into_iter().enumerate() {
                let out = out.unwrap();
                assert_eq!(
                    out.hidden.shape(),
                    whole.hidden.shape(),
                    "{name}: {count} shards"
                );
                // tolerance 0: the shards split output features, never a sum (module docs)
                let got = bits(&out.hidden.to_vec_blocking().unwrap());
                assert!(
                    got == expected,
                    "{name}: shard {shard} of {count} differs from one engine"
                );
            }
            // 4 gathers per layer, 2 layers
            assert_eq!(mailbox.borrow().len(), 8, "{name}: {count} shards");
        }
    }
}

#[test]
fn shards_are_refused_where_they_cannot_work_and_dropped_when_weights_may_change() {
    let mut model = load("bert-random");
    assert!(ShardPlan::new(2, 2).is_err());
    let error = model
        .prepare_shards(ShardPlan::new(0, 5).unwrap())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("5 tensor-parallel shards for 4 attention heads"),
        "{error}"
    );
    let exchange = TestExchange {
        index: 0,
        count: 1,
        step: Cell::new(0),
        mailbox: Mailbox::default(),
    };
    let error = pollster_block(model.encode_sharded(&batch(), &exchange)).unwrap_err();
    assert!(
        error.to_string().contains("before prepare_shards"),
        "{error}"
    );
    model.prepare_shards(ShardPlan::new(1, 2).unwrap()).unwrap();
    assert_eq!(model.shard_plan(), Some(ShardPlan { index: 1, count: 2 }));
    let _ = model.parameters_mut(); // an optimizer's way in: the copies would go stale
    assert_eq!(model.shard_plan(), None);
}

/// Polls a future that needs no other to finish.
fn pollster_block<T>(future: impl Future<Output = T>) -> T {
    let mut future = Box::pin(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
    }
}
