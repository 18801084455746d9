//! Random architectures of a search space, the baseline a search has to beat (Li & Talwalkar,
//! 2019, "Random search and reproducibility for NAS"): uniform over exactly the choices the
//! derivation makes, so a random cell and a searched one come from the same set.

use super::genotype::Genotype;
use super::graph::ModelGraph;
use super::search_space::SearchSpace;
use super::NONE;
use crate::error::Result;
use crate::rng::Rng;

/// A genotype drawn uniformly from what [`super::derive_genotype`] can give in `space`: for
/// every node of the normal and of the reduction cell, two distinct predecessors (uniform over
/// the pairs of the node's `i + 2` inputs: the two cell inputs and the earlier nodes), each with
/// an operation uniform over the space's operations other than `none`; the concat is the
/// space's (the last `multiplier` nodes). The same `rng` state gives the same genotype.
///
/// Where the concat leaves out nodes (`multiplier < steps`), a draw can leave a node that
/// nothing reads, which [`ModelGraph::validate`] refuses (and the network would compute for
/// nothing): such a cell is drawn again, so the result is uniform over the valid cells.
///
/// A space that [`SearchSpace::validate`] refuses is an error.
pub fn random_genotype(space: &SearchSpace, rng: &mut Rng) -> Result<Genotype> {
    space.validate()?;
    let ops: Vec<&str> = space.primitives().into_iter().filter(|&op| op != NONE).collect();
    let mut draw = || {
        let mut gene = Vec::with_capacity(2 * space.steps);
        for node in 0..space.steps {
            let inputs = node + 2;
            // Two distinct inputs: the second drawn from the inputs left after the first.
            let first = rng.below(inputs);
            let mut second = rng.below(inputs - 1);
            if second >= first {
                second += 1;
            }
            for input in [first, second] {
                gene.push((ops[rng.below(ops.len())].to_string(), input));
            }
        }
        gene
    };
    let concat = space.concat();
    let mut cell = |reduction: bool| loop {
        let gene = draw();
        if ModelGraph::from_cell(&gene, &concat, reduction).is_valid(&ops) {
            break gene;
        }
    };
    let normal = cell(false);
    let reduce = cell(true);
    Ok(Genotype { normal, normal_concat: concat.clone(), reduce, reduce_concat: concat })
}
