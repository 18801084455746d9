//! The `space` layer: genotypes (JSON, Python text, DOT), derivation from alphas, model graphs
//! and their validity, search-space descriptions, ENAS encodings. No GPU.

use wgpu_nas::space::{
    darts_v1, darts_v2, derive_genotype, DeriveRule, Genotype, GraphEdge, GraphNode, InvalidGraph, MacroArch,
    MacroLayer, MicroArch, MicroNode, ModelGraph, NodeKind, SearchSpace, CONCAT, DARTS_PRIMITIVES, ENAS_MICRO_OPS,
};

/// The two lines of quark0/darts `cnn/genotypes.py`, verbatim.
const DARTS_V1_TEXT: &str = "DARTS_V1 = Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])";
const DARTS_V2_TEXT: &str = "DARTS_V2 = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

/// The multi-line layout of genotypes.py's NASNet entry (trailing commas, spaces around `=`).
const NASNET_TEXT: &str = "NASNet = Genotype(
  normal = [
    ('sep_conv_5x5', 1),
    ('sep_conv_3x3', 0),
    ('sep_conv_5x5', 0),
    ('sep_conv_3x3', 0),
    ('avg_pool_3x3', 1),
    ('skip_connect', 0),
    ('avg_pool_3x3', 0),
    ('avg_pool_3x3', 0),
    ('sep_conv_3x3', 1),
    ('skip_connect', 1),
  ],
  normal_concat = [2, 3, 4, 5, 6],
  reduce = [
    ('sep_conv_5x5', 1),
    ('sep_conv_7x7', 0),
    ('max_pool_3x3', 1),
    ('sep_conv_7x7', 0),
    ('avg_pool_3x3', 1),
    ('sep_conv_5x5', 0),
    ('skip_connect', 3),
    ('avg_pool_3x3', 2),
    ('sep_conv_3x3', 2),
    ('max_pool_3x3', 1),
  ],
  reduce_concat = [4, 5, 6],
)
";

fn config_message(result: Result<impl std::fmt::Debug, wgpu_nas::Error>) -> String {
    match result {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

// ---------------------------------------------------------------- Genotype text and JSON

#[test]
fn reference_genotypes_parse_from_the_reference_text() {
    assert_eq!(Genotype::from_python(DARTS_V1_TEXT).unwrap(), darts_v1());
    assert_eq!(Genotype::from_python(DARTS_V2_TEXT).unwrap(), darts_v2());
    // The `range(2, 6)` spelling other DARTS code bases print.
    let ranged = DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "range(2, 6)");
    assert!(ranged.contains("normal_concat=range(2, 6)"));
    assert_eq!(Genotype::from_python(&ranged).unwrap(), darts_v2());
    let listed = DARTS_V1_TEXT.replace("[2, 3, 4, 5]", "list(range(2, 6))");
    assert_eq!(Genotype::from_python(&listed).unwrap(), darts_v1());
    darts_v1().validate(&DARTS_PRIMITIVES).unwrap();
    darts_v2().validate(&DARTS_PRIMITIVES).unwrap();
}

#[test]
fn python_text_is_the_reference_form_and_round_trips() {
    let text = darts_v2().to_python();
    assert_eq!(text, DARTS_V2_TEXT.trim_start_matches("DARTS_V2 = "));
    assert_eq!(darts_v1().to_python(), DARTS_V1_TEXT.trim_start_matches("DARTS_V1 = "));
    for genotype in [darts_v1(), darts_v2(), Genotype::from_python(NASNET_TEXT).unwrap()] {
        assert_eq!(Genotype::from_python(&genotype.to_python()).unwrap(), genotype);
    }
}

#[test]
fn python_text_in_free_layout() {
    let nasnet = Genotype::from_python(NASNET_TEXT).unwrap();
    assert_eq!(nasnet.normal.len(), 10);
    assert_eq!(nasnet.normal[0], ("sep_conv_5x5".to_string(), 1));
    assert_eq!(nasnet.normal_concat, vec![2, 3, 4, 5, 6]);
    assert_eq!(nasnet.reduce[6], ("skip_connect".to_string(), 3));
    assert_eq!(nasnet.reduce_concat, vec![4, 5, 6]);
    // Not a DARTS genotype: sep_conv_7x7 is no DARTS primitive.
    let msg = config_message(nasnet.validate(&DARTS_PRIMITIVES));
    assert!(
        msg.contains("reduce cell") && msg.contains("\"sep_conv_7x7\"") && msg.contains("unknown operation"),
        "{msg}"
    );

    // Positional fields, double quotes, comments, no name in front.
    let text = "Genotype(\n  [(\"skip_connect\", 0), ('sep_conv_3x3', 1)],  # node 0\n  range(2, 3),\n  \
                [('max_pool_3x3', 0), ('max_pool_3x3', 1)], [2])";
    let g = Genotype::from_python(text).unwrap();
    assert_eq!(g.normal, vec![("skip_connect".into(), 0), ("sep_conv_3x3".into(), 1)]);
    assert_eq!(g.normal_concat, vec![2]);
    assert_eq!(g.reduce_concat, vec![2]);
    g.validate(&DARTS_PRIMITIVES).unwrap();
}

/// What users paste: tuples for lists, a module prefix, `NAME = genotypes.Genotype(...)`.
#[test]
fn python_text_with_tuples_and_module_prefixes() {
    let tupled = DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "(2, 3, 4, 5)");
    assert!(tupled.contains("normal_concat=(2, 3, 4, 5)"));
    assert_eq!(Genotype::from_python(&tupled).unwrap(), darts_v2());
    // Cells as tuples of pairs, and a one-element tuple with its trailing comma.
    let cells = tupled.replace("normal=[", "normal=(").replace("], normal_concat", "), normal_concat");
    assert_eq!(Genotype::from_python(&cells).unwrap(), darts_v2());
    let one =
        "Genotype(normal=(('skip_connect', 0),), normal_concat=(2,), reduce=[], reduce_concat=tuple(range(2, 3)))";
    let g = Genotype::from_python(one).unwrap();
    assert_eq!((g.normal, g.normal_concat, g.reduce_concat), (vec![("skip_connect".into(), 0)], vec![2], vec![2]));
    for prefixed in [
        DARTS_V2_TEXT.replace("= Genotype(", "= genotypes.Genotype("),
        DARTS_V2_TEXT.replace("DARTS_V2 = Genotype(", "genotypes.Genotype("),
        DARTS_V2_TEXT.replace("DARTS_V2 = Genotype(", "cnn.genotypes . Genotype("),
    ] {
        assert_eq!(Genotype::from_python(&prefixed).unwrap(), darts_v2(), "{prefixed}");
    }
    let msg = config_message(Genotype::from_python(&DARTS_V2_TEXT.replace("= Genotype(", "= genotypes.Genome(")));
    assert!(msg.contains("column 12") && msg.contains("expected `Genotype(`"), "{msg}");
}

/// A whole module in genotypes.py's layout: each `NAME = Genotype(...)` by name, aliases, the
/// names listed when the one asked for is not there.
#[test]
fn a_whole_genotypes_module_by_name() {
    let module = format!(
        "from collections import namedtuple\n\nGenotype = namedtuple('Genotype', 'normal normal_concat reduce \
         reduce_concat')\n\nPRIMITIVES = [\n    'none',\n    'max_pool_3x3',  # ')' in a comment\n]\n\n\
         {NASNET_TEXT}\n    \n{DARTS_V1_TEXT}\n{DARTS_V2_TEXT}\n\nDARTS = DARTS_V2\nBROKEN = Genotype(normal=[], normal_concat=[2], reduce=[], reduce_concat=[2]) extra\n"
    );
    let found = Genotype::python_module_genotypes(&module);
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["NASNet", "DARTS_V1", "DARTS_V2", "DARTS", "BROKEN"]);
    let pick = |name| Genotype::from_python_module(&module, Some(name));
    assert_eq!(pick("DARTS_V1").unwrap(), darts_v1());
    assert_eq!(pick("DARTS").unwrap(), darts_v2());
    assert_eq!(pick("NASNet").unwrap(), Genotype::from_python(NASNET_TEXT).unwrap());
    // The broken one fails alone, with the file's line.
    let msg = config_message(pick("BROKEN"));
    let line = module.lines().position(|l| l.starts_with("BROKEN")).unwrap() + 1;
    assert!(msg.contains(&format!("line {line}, column 79: expected end of text")), "{msg}");
    let msg = config_message(pick("PNASNet"));
    assert_eq!(
        msg,
        "invalid configuration: no genotype named \"PNASNet\": expected one of the names the text assigns: NASNet, DARTS_V1, \
         DARTS_V2, DARTS, BROKEN"
    );
    // No name: the whole text as one genotype fails, and the module has several to choose from.
    let msg = config_message(Genotype::from_python_module(&module, None));
    assert!(msg.contains("assigns 5 genotypes (NASNet, DARTS_V1, DARTS_V2, DARTS, BROKEN)"), "{msg}");
    // One genotype in a module (imports around it) needs no name; one `Genotype(...)` neither.
    let single = format!("from genotypes import Genotype\n{DARTS_V1_TEXT}\nprint(DARTS_V1)\n");
    assert_eq!(Genotype::from_python_module(&single, None).unwrap(), darts_v1());
    assert_eq!(Genotype::from_python_module(DARTS_V2_TEXT, None).unwrap(), darts_v2());
    let msg = config_message(Genotype::from_python_module("import os\n", Some("DARTS")));
    assert!(msg.contains("no genotype named \"DARTS\"") && msg.contains("has none"), "{msg}");
}

#[test]
fn malformed_python_text_says_where_and_what() {
    let cases: &[(&str, &[&str])] = &[
        // A pair closed by `]` instead of `)`.
        (
            "Genotype(normal=[('sep_conv_3x3', 0], normal_concat=[2], reduce=[], reduce_concat=[2])",
            &["line 1, column 36", "expected `)` closing an ('operation', input) pair", "found \"]"],
        ),
        (
            "Genotype(normals=[], normal_concat=[2], reduce=[], reduce_concat=[2])",
            &["column 10", "one of `normal=`, `normal_concat=`, `reduce=`, `reduce_concat=`", "found \"normals="],
        ),
        (
            "Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[('max_pool_3x3', 1)])",
            &["field `reduce_concat` is missing"],
        ),
        (
            "Genotype(normal=[('sep_conv_3x3, 0)], normal_concat=[2], reduce=[], reduce_concat=[2])",
            &["an operation name closed by '"],
        ),
        (
            "Genotype(normal=[('sep_conv_3x3', 0)],\n normal_concat=rang(2, 6), reduce=[], reduce_concat=[2])",
            &["line 2, column 16", "a list of node indices", "found \"rang(2, 6)"],
        ),
        (
            "Genotype(normal=[('sep_conv_3x3', -1)], normal_concat=[2], reduce=[], reduce_concat=[2])",
            &["expected a non-negative integer"],
        ),
        (
            "Genotype(normal=[], normal=[], normal_concat=[2], reduce=[], reduce_concat=[2])",
            &["`normal` is given twice"],
        ),
        (
            "Genotype(normal=[], normal_concat=[2], reduce=[], reduce_concat=[2]",
            &["expected `,` or `)`", "end of text"],
        ),
        (
            "Genotype(normal=[], normal_concat=[2], reduce=[], reduce_concat=[2]) extra",
            &["expected end of text", "found \"extra\""],
        ),
        ("Genome(normal=[])", &["expected `=` or `(` after the name", "found \"(normal"]),
        ("", &["expected `Genotype(`", "found end of text"]),
    ];
    for (text, needles) in cases {
        let msg = config_message(Genotype::from_python(text));
        assert!(msg.contains("genotype text"), "{text:?}: {msg}");
        for needle in *needles {
            assert!(msg.contains(needle), "{text:?}: message {msg:?} lacks {needle:?}");
        }
    }
}

#[test]
fn json_round_trip_and_layout() {
    let g = darts_v2();
    let compact = serde_json::to_string(&g).unwrap();
    assert!(compact.starts_with(r#"{"normal":[["sep_conv_3x3",0],["sep_conv_3x3",1],"#), "{compact}");
    assert!(compact.contains(r#""normal_concat":[2,3,4,5]"#), "{compact}");
    assert_eq!(Genotype::from_json(&g.to_json()).unwrap(), g);
    assert_eq!(Genotype::from_json(&compact).unwrap(), g);
}

#[test]
fn malformed_json_gives_a_clear_error() {
    let msg = config_message(Genotype::from_json(r#"{"normal": [["sep_conv_3x3", "zero"]]}"#));
    assert!(msg.contains("genotype JSON") && msg.contains("line 1"), "{msg}");
    assert!(msg.contains("invalid type: string \"zero\", expected usize"), "{msg}");
    let msg = config_message(Genotype::from_json(r#"{"normal": [], "normal_concat": [], "reduce": []}"#));
    assert!(msg.contains("missing field `reduce_concat`"), "{msg}");
    let msg = config_message(Genotype::from_json("{\"normal\": [[\"sep_conv_3x3\", 0]"));
    assert!(msg.contains("EOF"), "{msg}");
}

#[test]
fn validate_rejects_broken_genotypes_with_the_reason() {
    let mut g = darts_v2();
    g.normal[2].1 = 3; // node 1 reads node 1 (index 3): itself
    let msg = config_message(g.validate(&DARTS_PRIMITIVES));
    assert!(
        msg.contains("normal cell") && msg.contains("node 1 can read inputs 0..=2") && msg.contains("not 3"),
        "{msg}"
    );

    let mut g = darts_v2();
    g.reduce.pop();
    let msg = config_message(g.validate(&DARTS_PRIMITIVES));
    assert!(msg.contains("reduce cell") && msg.contains("two (operation, input) entries per node, got 7"), "{msg}");

    let mut g = darts_v2();
    g.normal_concat = vec![2, 6];
    let msg = config_message(g.validate(&DARTS_PRIMITIVES));
    assert!(msg.contains("concat index 6 is not an intermediate node (2..=5)"), "{msg}");

    let mut g = darts_v2();
    g.reduce_concat = vec![2, 2];
    let msg = config_message(g.validate(&DARTS_PRIMITIVES));
    assert!(msg.contains("concat lists node 2 twice"), "{msg}");
}

// ---------------------------------------------------------------- derivation

/// One row of raw alphas over DARTS_PRIMITIVES, zero except for the given (op, value) pairs.
fn row(spikes: &[(&str, f32)]) -> Vec<f32> {
    let mut r = vec![0.0; DARTS_PRIMITIVES.len()];
    for &(op, v) in spikes {
        r[DARTS_PRIMITIVES.iter().position(|p| *p == op).unwrap()] = v;
    }
    r
}

fn entries(list: &[(&str, usize)]) -> Vec<(String, usize)> {
    list.iter().map(|&(op, i)| (op.to_string(), i)).collect()
}

/// 3 nodes, 2 + 3 + 4 = 9 edges. Softmax weights (hand-computed, e = 2.71828):
/// node 0: both edges skip_connect e/(e+7) = 0.280, identical: order ties to edge 0 first.
/// node 1: input 0 has `none` strongest (3.0) with sep_conv_5x5 runner-up:
///           e^2.9/(e^3 + e^2.9 + 6) = 0.411;
///         input 1 avg_pool_3x3 e/(e+7) = 0.280;
///         input 2 sep_conv_3x3 and dil_conv_3x3 tied at 0.5: e^.5/(2e^.5 + 6) = 0.177, op tie
///           to the lower index, sep_conv_3x3.
///   Top2 keeps inputs 0 (sep_conv_5x5) and 1; Argmax drops input 0 (argmax `none`) and keeps
///   1 and 2.
/// node 2: inputs 0, 2 and 3 tie with max_pool_3x3 at 0.280; input 1 is all zeros (every op
///   1/8, argmax `none` by the tie to index 0). Both rules keep inputs 0 and 2.
fn hand_made_normal() -> Vec<Vec<f32>> {
    let spike = row(&[("max_pool_3x3", 1.0)]);
    vec![
        row(&[("skip_connect", 1.0)]),
        row(&[("skip_connect", 1.0)]),
        row(&[("none", 3.0), ("sep_conv_5x5", 2.9)]),
        row(&[("avg_pool_3x3", 1.0)]),
        row(&[("sep_conv_3x3", 0.5), ("dil_conv_3x3", 0.5)]),
        spike.clone(),
        row(&[]),
        spike.clone(),
        spike,
    ]
}

#[test]
fn derivation_on_hand_made_alphas() {
    let normal = hand_made_normal();
    // Reduce: all zero, so `none` is every edge's argmax; both rules fall back to the first
    // two edges with max_pool_3x3 (the lowest-index non-none op).
    let reduce = vec![vec![0.0; 8]; 9];
    let reduce_expected = entries(&[
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
    ]);

    let top2 = derive_genotype(&normal, &reduce, &DARTS_PRIMITIVES, 3, 3, DeriveRule::Top2).unwrap();
    assert_eq!(
        top2.normal,
        entries(&[
            ("skip_connect", 0),
            ("skip_connect", 1),
            ("sep_conv_5x5", 0),
            ("avg_pool_3x3", 1),
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 2),
        ])
    );
    assert_eq!(top2.normal_concat, vec![2, 3, 4]);
    assert_eq!(top2.reduce, reduce_expected);
    assert_eq!(top2.reduce_concat, vec![2, 3, 4]);

    let argmax = derive_genotype(&normal, &reduce, &DARTS_PRIMITIVES, 3, 3, DeriveRule::Argmax).unwrap();
    assert_eq!(
        argmax.normal,
        entries(&[
            ("skip_connect", 0),
            ("skip_connect", 1),
            ("avg_pool_3x3", 1),
            ("sep_conv_3x3", 2),
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 2),
        ])
    );
    assert_eq!(argmax.reduce, reduce_expected);
    for g in [&top2, &argmax] {
        g.validate(&DARTS_PRIMITIVES).unwrap();
        let (n, r) = ModelGraph::from_genotype(g);
        n.validate(&DARTS_PRIMITIVES).unwrap();
        r.validate(&DARTS_PRIMITIVES).unwrap();
    }

    // With multiplier 2 the output is nodes 1 and 2 only (the reference's
    // `range(2 + steps - multiplier, steps + 2)`); in the reduce cell no node reads node 0, so
    // its graph has a dead node, which validation reports.
    let last_two = derive_genotype(&normal, &reduce, &DARTS_PRIMITIVES, 3, 2, DeriveRule::Top2).unwrap();
    assert_eq!((last_two.normal_concat.clone(), last_two.reduce_concat.clone()), (vec![3, 4], vec![3, 4]));
    let (n, r) = ModelGraph::from_genotype(&last_two);
    n.validate(&DARTS_PRIMITIVES).unwrap();
    assert_eq!(r.validate(&DARTS_PRIMITIVES), Err(InvalidGraph::DeadEnd("0".into())));
}

/// Alphas that make DARTS_V2 the answer: the genotype's first entry of each node gets 3.0, its
/// second 2.0, all else 0.
#[test]
fn derivation_recovers_darts_v2_on_the_default_space() {
    let space = SearchSpace::darts();
    let target = darts_v2();
    let alphas = |cell: &[(String, usize)]| -> Vec<Vec<f32>> {
        let mut a = vec![vec![0.0; space.num_ops()]; space.num_edges()];
        for (k, (op, input)) in cell.iter().enumerate() {
            let edge = space.node_edges(k / 2).start + input;
            a[edge][DARTS_PRIMITIVES.iter().position(|p| p == op).unwrap()] = if k % 2 == 0 { 3.0 } else { 2.0 };
        }
        a
    };
    for rule in [DeriveRule::Top2, DeriveRule::Argmax] {
        let g = space.derive_genotype(&alphas(&target.normal), &alphas(&target.reduce), rule).unwrap();
        assert_eq!(g, target, "{rule:?}");
    }
}

#[test]
fn derivation_without_none_and_bad_alphas() {
    // A space without `none`: its argmax is every edge's best op.
    let ops = ["skip_connect", "sep_conv_3x3"];
    let a = vec![vec![0.0, 1.0], vec![2.0, 0.0], vec![0.0, 0.5], vec![0.1, 0.0], vec![0.0, 0.0]];
    for rule in [DeriveRule::Top2, DeriveRule::Argmax] {
        let g = derive_genotype(&a, &a, &ops, 2, 2, rule).unwrap();
        // Node 0: skip (e^2/(e^2+1) = 0.88) before sep (e/(e+1) = 0.73); node 1: sep on input 0
        // (0.62) before the 0.525 of skip on input 1.
        assert_eq!(
            g.normal,
            entries(&[("skip_connect", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 0), ("skip_connect", 1)])
        );
    }
    let msg = config_message(derive_genotype(&a[..4], &a, &ops, 2, 2, DeriveRule::Top2));
    assert!(msg.contains("alphas_normal") && msg.contains("4 rows of alphas for 2 nodes; expected 5"), "{msg}");
    let mut bad = a.clone();
    bad[3][1] = f32::NAN;
    let msg = config_message(derive_genotype(&a, &bad, &ops, 2, 2, DeriveRule::Top2));
    assert!(msg.contains("alphas_reduce") && msg.contains("edge 3, operation sep_conv_3x3: alpha is NaN"), "{msg}");
    let msg = config_message(derive_genotype(&a, &a, &ops[..1], 2, 2, DeriveRule::Top2));
    assert!(msg.contains("edge 0 has 2 weights for 1 operations"), "{msg}");
    let msg = config_message(derive_genotype(&a, &a, &ops, 2, 3, DeriveRule::Top2));
    assert!(msg.contains("multiplier 3 must be in 1..=2"), "{msg}");
}

// ---------------------------------------------------------------- ModelGraph

#[test]
fn model_graphs_of_darts_v2_are_valid() {
    let (normal, reduce) = ModelGraph::from_genotype(&darts_v2());
    for g in [&normal, &reduce] {
        g.validate(&DARTS_PRIMITIVES).unwrap();
        assert!(g.is_valid(&DARTS_PRIMITIVES));
        assert_eq!(g.nodes.len(), 2 + 4 + 1);
        assert_eq!(g.edges.len(), 8 + 4);
        assert_eq!(g.nodes.iter().filter(|n| n.kind == NodeKind::Input).count(), 2);
        assert_eq!(g.nodes[6].name, "c_{k}");
    }
    assert!(normal.edges.iter().all(|e| e.stride == 1));
    for e in &reduce.edges {
        assert_eq!(e.stride, if e.from < 2 { 2 } else { 1 }, "{e:?}");
    }
    // dil_conv_3x3 from node 0 (id 2) into node 3 (id 5).
    assert!(normal.edges.contains(&GraphEdge { from: 2, to: 5, op: "dil_conv_3x3".into(), stride: 1 }));
    let json = serde_json::to_string(&reduce).unwrap();
    assert!(json.contains(r#""kind":"input""#), "{json}");
    assert_eq!(serde_json::from_str::<ModelGraph>(&json).unwrap(), reduce);
}

fn node(id: usize, kind: NodeKind, name: &str) -> GraphNode {
    GraphNode { id, kind, name: name.into() }
}

fn edge(from: usize, to: usize, op: &str) -> GraphEdge {
    GraphEdge { from, to, op: op.into(), stride: 1 }
}

/// input -> a -> b -> output, all stride 1.
fn chain() -> ModelGraph {
    ModelGraph {
        nodes: vec![
            node(0, NodeKind::Input, "in"),
            node(1, NodeKind::Intermediate, "a"),
            node(2, NodeKind::Intermediate, "b"),
            node(3, NodeKind::Output, "out"),
        ],
        edges: vec![edge(0, 1, "sep_conv_3x3"), edge(1, 2, "max_pool_3x3"), edge(2, 3, CONCAT)],
    }
}

#[test]
fn invalid_graphs_are_rejected_with_the_reason() {
    chain().validate(&DARTS_PRIMITIVES).unwrap();

    let mut cycle = chain();
    cycle.edges.push(edge(2, 1, "skip_connect"));
    assert_eq!(cycle.validate(&DARTS_PRIMITIVES), Err(InvalidGraph::Cycle(vec!["a".into(), "b".into(), "out".into()])));

    let mut unreachable = chain();
    unreachable.nodes.push(node(4, NodeKind::Intermediate, "orphan"));
    unreachable.edges.push(edge(4, 2, "skip_connect"));
    assert_eq!(unreachable.validate(&DARTS_PRIMITIVES), Err(InvalidGraph::Unreachable("orphan".into())));

    // A genotype cell whose node 0 feeds nothing and is left out of the concat.
    let dangling = ModelGraph::from_cell(
        &entries(&[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 1)]),
        &[3],
        false,
    );
    assert_eq!(dangling.validate(&DARTS_PRIMITIVES), Err(InvalidGraph::DeadEnd("0".into())));

    let mut unknown = chain();
    unknown.edges[1].op = "conv_7x7".into();
    let err = unknown.validate(&DARTS_PRIMITIVES).unwrap_err();
    assert!(
        matches!(&err, InvalidGraph::UnknownOp { from, to, op, .. } if from == "a" && to == "b" && op == "conv_7x7")
    );
    assert!(err.to_string().contains("known operations: none, max_pool_3x3"), "{err}");

    let mut output_op = chain();
    output_op.edges[2].op = "skip_connect".into();
    assert!(matches!(output_op.validate(&DARTS_PRIMITIVES), Err(InvalidGraph::OutputOp { .. })));

    let mut missing = chain();
    missing.edges.push(edge(0, 9, "skip_connect"));
    assert_eq!(missing.validate(&DARTS_PRIMITIVES), Err(InvalidGraph::MissingNode { edge: 3, id: 9 }));

    let mut duplicate = chain();
    duplicate.nodes[2].id = 1;
    assert_eq!(duplicate.validate(&DARTS_PRIMITIVES), Err(InvalidGraph::DuplicateId(1)));

    let mut two_outputs = chain();
    two_outputs.nodes[2].kind = NodeKind::Output;
    assert_eq!(two_outputs.validate(&DARTS_PRIMITIVES), Err(InvalidGraph::OutputCount(2)));
}

#[test]
fn inconsistent_strides_are_rejected() {
    // A reduction cell whose node-to-node edge also has stride 2: node 1 gets 1/2 from
    // c_{k-1} and 1/4 through node 0.
    let (_, mut reduce) = ModelGraph::from_genotype(&darts_v2());
    let inner = reduce.edges.iter().position(|e| e.from >= 2 && e.op != CONCAT).unwrap();
    reduce.edges[inner].stride = 2;
    let err = reduce.validate(&DARTS_PRIMITIVES).unwrap_err();
    assert!(matches!(&err, InvalidGraph::Stride { node, .. } if node == "1"), "{err}");
    assert!(err.to_string().contains("inconsistent strides into node 1"), "{err}");

    // A normal cell with one input edge of stride 2: node 0 sums a 1/2 and a 1/1 tensor.
    let (mut normal, _) = ModelGraph::from_genotype(&darts_v2());
    normal.edges[0].stride = 2;
    let err = normal.validate(&DARTS_PRIMITIVES).unwrap_err();
    assert!(matches!(&err, InvalidGraph::Stride { node, a_scale: 2, b_scale: 1, .. } if node == "0"), "{err}");

    let mut odd = chain();
    odd.edges[0].stride = 3;
    assert_eq!(
        odd.validate(&DARTS_PRIMITIVES),
        Err(InvalidGraph::BadStride { from: "in".into(), to: "a".into(), stride: 3 })
    );
    odd.edges[0].stride = 0;
    assert!(matches!(odd.validate(&DARTS_PRIMITIVES), Err(InvalidGraph::BadStride { stride: 0, .. })));
}

#[test]
fn dot_output_has_both_cells_and_labelled_edges() {
    let dot = darts_v2().to_dot();
    assert!(dot.starts_with("digraph genotype {"), "{dot}");
    assert!(dot.contains("subgraph cluster_normal {") && dot.contains("label=\"normal\";"), "{dot}");
    assert!(dot.contains("subgraph cluster_reduce {") && dot.contains("label=\"reduce\";"), "{dot}");
    for line in [
        r#""normal/c_{k-2}" -> "normal/0" [label="sep_conv_3x3"];"#,
        r#""normal/c_{k-1}" -> "normal/0" [label="sep_conv_3x3"];"#,
        r#""normal/0" -> "normal/3" [label="dil_conv_3x3"];"#,
        r#""normal/3" -> "normal/c_{k}" [color=gray];"#,
        r#""reduce/c_{k-2}" -> "reduce/0" [label="max_pool_3x3", tooltip="stride 2", penwidth=2];"#,
        r#""reduce/0" -> "reduce/1" [label="skip_connect"];"#,
        r#""normal/c_{k-2}" [label="c_{k-2}", fillcolor=darkseagreen2];"#,
    ] {
        assert!(dot.contains(line), "missing {line}\n{dot}");
    }
    assert_eq!(dot.matches(" -> ").count(), 2 * (8 + 4));

    let (normal, _) = ModelGraph::from_genotype(&darts_v1());
    let dot = normal.to_dot();
    assert!(dot.starts_with("digraph architecture {"));
    assert!(dot.contains(r#""c_{k-1}" -> "0" [label="sep_conv_3x3"];"#), "{dot}");
    assert!(dot.contains(r#""c_{k-2}" -> "3" [label="sep_conv_3x3"];"#), "{dot}");
    assert!(dot.contains(r#""0" -> "3" [label="skip_connect"];"#), "{dot}");
}

// ---------------------------------------------------------------- SearchSpace

#[test]
fn search_space_descriptions() {
    let darts = SearchSpace::darts();
    assert_eq!(darts.primitives(), DARTS_PRIMITIVES.to_vec());
    assert_eq!((darts.steps, darts.multiplier, darts.num_edges(), darts.num_ops()), (4, 4, 14, 8));
    assert_eq!(darts.node_edges(0), 0..2);
    assert_eq!(darts.node_edges(3), 9..14);
    assert_eq!(darts.concat(), vec![2, 3, 4, 5]);

    // The seed's single-cell space: no `none`, order as given.
    let seed = SearchSpace::with_ops(&["skip_connect", "sep_conv_3x3"]).unwrap();
    assert_eq!(seed.primitives(), vec!["skip_connect", "sep_conv_3x3"]);
    assert_eq!(seed.num_edges(), 14);
    let small = seed.clone().with_steps(2, 1).unwrap();
    assert_eq!((small.num_edges(), small.concat()), (5, vec![3]));

    let json = serde_json::to_string(&seed).unwrap();
    assert_eq!(json, r#"{"primitives":["skip_connect","sep_conv_3x3"],"steps":4,"multiplier":4}"#);
    assert_eq!(serde_json::from_str::<SearchSpace>(&json).unwrap(), seed);

    let msg = config_message(SearchSpace::with_ops(&["skip_connect", "conv_7x7"]));
    assert!(msg.contains("unknown DARTS operation \"conv_7x7\""), "{msg}");
    assert!(msg.contains("known operations: none, max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3"), "{msg}");
    let msg = config_message(SearchSpace::with_ops(&["none"]));
    assert!(msg.contains("at least one operation besides `none`"), "{msg}");
    let msg = config_message(SearchSpace::with_ops(&[]));
    assert!(msg.contains("at least one operation besides `none`"), "{msg}");
    let msg = config_message(SearchSpace::with_ops(&["skip_connect", "skip_connect"]));
    assert!(msg.contains("listed twice"), "{msg}");
    let msg = config_message(SearchSpace::darts().with_steps(3, 4));
    assert!(msg.contains("multiplier 4 must be in 1..=3"), "{msg}");
}

// ---------------------------------------------------------------- ENAS encodings

#[test]
fn enas_micro_encoding_round_trips_and_converts() {
    let node = |a, x, b, y| MicroNode { inputs: [a, b], ops: [x, y] };
    let arch = MicroArch {
        normal: vec![node(0, 0, 1, 4), node(1, 2, 2, 1), node(0, 3, 3, 0), node(2, 4, 1, 1), node(4, 0, 0, 2)],
        reduce: vec![node(1, 3, 0, 3), node(2, 4, 0, 0), node(1, 1, 3, 2), node(4, 0, 2, 1), node(5, 4, 1, 3)],
    };
    let flat = arch.to_flat();
    assert_eq!(flat.len(), 40);
    assert_eq!(&flat[..8], &[0, 0, 1, 4, 1, 2, 2, 1]);
    assert_eq!(MicroArch::from_flat(&flat, 5).unwrap(), arch);

    let g = arch.to_genotype();
    g.validate(&ENAS_MICRO_OPS).unwrap();
    assert_eq!(g.normal[1], ("identity".to_string(), 1));
    // Loose ends: normal nodes 3 (id 5) and 4 (id 6) are read by nobody; in reduce only node 4.
    assert_eq!(g.normal_concat, vec![5, 6]);
    assert_eq!(g.reduce_concat, vec![6]);
    let (normal, reduce) = arch.to_graphs();
    normal.validate(&ENAS_MICRO_OPS).unwrap();
    reduce.validate(&ENAS_MICRO_OPS).unwrap();

    let msg = config_message(MicroArch::from_flat(&flat[..39], 5));
    assert!(msg.contains("has 40 decisions"), "{msg}");
    let mut bad = flat.clone();
    bad[4] = 3; // node 1's first input: itself
    let msg = config_message(MicroArch::from_flat(&bad, 5));
    assert!(msg.contains("normal cell, node 1: input 3 is not one of 0..=2"), "{msg}");
    let mut bad = flat;
    bad[5] = 5;
    let msg = config_message(MicroArch::from_flat(&bad, 5));
    assert!(msg.contains("operation 5 is not one of 0..5"), "{msg}");
}

#[test]
fn enas_macro_encoding_round_trips_and_converts() {
    let arch = MacroArch {
        layers: vec![
            MacroLayer { op: 0, skips: vec![] },
            MacroLayer { op: 3, skips: vec![true] },
            MacroLayer { op: 5, skips: vec![false, false] },
            MacroLayer { op: 1, skips: vec![true, false, true] },
        ],
    };
    let flat = arch.to_flat();
    assert_eq!(flat, vec![0, 3, 1, 5, 0, 0, 1, 1, 0, 1]);
    assert_eq!(MacroArch::from_flat(&flat, 4).unwrap(), arch);

    let graph = arch.to_graph();
    graph.validate(&MacroArch::graph_ops()).unwrap();
    assert_eq!(graph.nodes.len(), 1 + 4 + 1);
    assert_eq!(graph.edges.len(), 4 + 3 + 1);
    assert!(graph.edges.contains(&GraphEdge { from: 1, to: 4, op: "identity".into(), stride: 1 }));
    assert!(graph.edges.contains(&GraphEdge { from: 2, to: 3, op: "max_pool_3x3".into(), stride: 1 }));

    // The seed's 12-layer macro space: 12 ops and 66 skip bits.
    let twelve = MacroArch::from_flat(&vec![0; 12 + 66], 12).unwrap();
    assert!(twelve.to_graph().is_valid(&MacroArch::graph_ops()));

    let msg = config_message(MacroArch::from_flat(&flat[..9], 4));
    assert!(msg.contains("has 10 decisions"), "{msg}");
    let mut bad = flat.clone();
    bad[2] = 2;
    let msg = config_message(MacroArch::from_flat(&bad, 4));
    assert!(msg.contains("layer 1: skip bit to layer 0 is 2, not 0 or 1"), "{msg}");
    let mut bad = flat;
    bad[3] = 6;
    let msg = config_message(MacroArch::from_flat(&bad, 4));
    assert!(msg.contains("layer 2: operation 6 is not one of 0..6"), "{msg}");
}

#[test]
fn enas_macro_reference_text_round_trips_and_checks_its_count() {
    // The reference's fixed_arc layout: one line per layer, its operation then its skip bits.
    let arch = MacroArch {
        layers: vec![
            MacroLayer { op: 2, skips: vec![] },
            MacroLayer { op: 4, skips: vec![true] },
            MacroLayer { op: 1, skips: vec![false, true] },
            MacroLayer { op: 5, skips: vec![true, true, false] },
        ],
    };
    let text = "2\n4 1\n1 0 1\n5 1 1 0\n";
    assert_eq!(MacroArch::from_reference_text(text).unwrap(), arch);
    let flat = arch.to_flat();
    let joined = flat.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" ");
    assert_eq!(MacroArch::from_reference_text(&joined).unwrap(), arch);
    // The reference's final run has 24 layers: 24 * 25 / 2 = 300 integers.
    let twenty_four = MacroArch::from_reference_text(&["0"; 300].join(" ")).unwrap();
    assert_eq!(twenty_four.layers.len(), 24);

    for (text, needle) in [
        ("", "got 0"),
        ("2 4 1 1", "L(L+1)/2 integers"),
        (&joined[..joined.len() - 2], "got 9"),
        ("2 6 1", "layer 1: operation 6 is not one of 0..6"),
        ("2 4 2", "layer 1: skip bit to layer 0 is 2, not 0 or 1"),
        ("2 x 1", "\"x\" is not a non-negative integer"),
        ("2 -4 1", "\"-4\" is not a non-negative integer"),
    ] {
        let msg = config_message(MacroArch::from_reference_text(text));
        assert!(msg.contains(needle), "{text:?}: {msg}");
    }
}

// ---------------------------------------------------------------- random genotypes

/// Random genotypes (the experiment's baseline) are valid graphs of the space they are drawn
/// from, reproducible from the seed, and cover its choices uniformly.
#[test]
fn random_genotypes_are_valid_reproducible_and_uniform_over_the_space() {
    use wgpu_nas::rng::Rng;
    use wgpu_nas::space::random_genotype;
    let spaces = [
        SearchSpace::darts(),
        SearchSpace::with_ops(&["none", "skip_connect", "sep_conv_3x3"]).unwrap().with_steps(3, 2).unwrap(),
    ];
    for space in &spaces {
        let ops: Vec<&str> = space.primitives().into_iter().filter(|&op| op != "none").collect();
        for seed in 0..200 {
            let g = random_genotype(space, &mut Rng::new(seed)).unwrap();
            assert_eq!(g, random_genotype(space, &mut Rng::new(seed)).unwrap(), "seed {seed}: not reproducible");
            let (normal, reduce) = ModelGraph::from_genotype(&g);
            assert!(normal.is_valid(&ops) && reduce.is_valid(&ops), "seed {seed}: {}", g.to_python());
            g.validate(&ops).unwrap();
            assert_eq!((g.normal_concat.clone(), g.reduce_concat.clone()), (space.concat(), space.concat()));
            for cell in [&g.normal, &g.reduce] {
                assert_eq!(cell.len(), 2 * space.steps);
                for (node, pair) in cell.chunks(2).enumerate() {
                    assert_ne!(pair[0].1, pair[1].1, "seed {seed}: node {node} reads one input twice");
                    assert!(pair.iter().all(|(_, input)| *input < node + 2));
                }
            }
        }
        assert_ne!(
            random_genotype(space, &mut Rng::new(1)).unwrap(),
            random_genotype(space, &mut Rng::new(2)).unwrap()
        );
    }

    // Uniform: over 4000 normal cells of the DARTS space, each of the 7 operations takes 1/7 of
    // the entries and node 3 (5 inputs) reads each of its 10 input pairs a tenth of the time.
    let space = SearchSpace::darts();
    let mut rng = Rng::new(7);
    let (mut op_counts, mut pair_counts) = (std::collections::BTreeMap::new(), [0usize; 25]);
    let draws = 4000;
    for _ in 0..draws {
        let g = random_genotype(&space, &mut rng).unwrap();
        for (op, _) in &g.normal {
            *op_counts.entry(op.clone()).or_insert(0usize) += 1;
        }
        let (a, b) = (g.normal[6].1.min(g.normal[7].1), g.normal[6].1.max(g.normal[7].1));
        pair_counts[a * 5 + b] += 1;
    }
    assert_eq!(op_counts.len(), 7, "{op_counts:?}");
    let entries = (draws * 8) as f64;
    for (op, &n) in &op_counts {
        assert!((n as f64 / entries - 1.0 / 7.0).abs() < 0.015, "{op}: {n} of {entries}");
    }
    let pairs: Vec<usize> = pair_counts.iter().copied().filter(|&n| n > 0).collect();
    assert_eq!(pairs.len(), 10, "{pair_counts:?}");
    assert!(pairs.iter().all(|&n| (n as f64 / draws as f64 - 0.1).abs() < 0.03), "{pair_counts:?}");
}

/// A random genotype is one the derivation can give: alphas that favour exactly its edges and
/// operations derive it back (so random cells and searched cells share one space).
#[test]
fn the_derivation_can_reach_every_random_genotype() {
    use wgpu_nas::rng::Rng;
    use wgpu_nas::space::random_genotype;
    let space = SearchSpace::darts();
    for seed in 0..50 {
        let g = random_genotype(&space, &mut Rng::new(seed)).unwrap();
        let alphas = |cell: &[(String, usize)]| -> Vec<Vec<f32>> {
            let mut rows = vec![vec![0.0; space.num_ops()]; space.num_edges()];
            for (k, (op, input)) in cell.iter().enumerate() {
                let edge = space.node_edges(k / 2).start + input;
                let col = space.primitives.iter().position(|p| p == op).unwrap();
                // The first entry of a node the stronger: derive lists it first.
                rows[edge][col] = if k % 2 == 0 { 5.0 } else { 4.0 };
            }
            rows
        };
        let derived = space.derive_genotype(&alphas(&g.normal), &alphas(&g.reduce), DeriveRule::Top2).unwrap();
        assert_eq!(derived, g, "seed {seed}");
    }
}
