import numpy as np

from brainexpr.atlas import tissue


def test_tissue_class_rule():
    p_grey = np.array([0.9, 0.2, 0.3, 0.5, 0.0])
    p_white = np.array([0.1, 0.7, 0.3, 0.5, 0.0])
    np.testing.assert_array_equal(tissue.tissue_class(p_grey, p_white), [1, -1, 0, 1, 0])
    np.testing.assert_array_equal(tissue.tissue_class(p_grey, p_white, threshold=0.25), [1, -1, 1, 1, 0])


def test_tissue_class_at_known_points(data_dir):
    points = np.array([
        [-12.0, 12.0, 10.0],    # head of the left caudate, grey matter
        [-28.0, -10.0, 30.0],   # corona radiata, deep white matter
        [0.0, 0.0, 150.0],      # outside the head
    ])
    np.testing.assert_array_equal(tissue.tissue_class_at(points, data_dir=data_dir), [1, -1, 0])


def test_tissue_class_image(data_dir):
    image = tissue.tissue_class_image(data_dir=data_dir, resolution=2)
    values, counts = np.unique(np.asarray(image.dataobj), return_counts=True)
    assert set(values) == {-1, 0, 1}
    assert image.shape == (91, 109, 91)


def test_samples_get_their_tissue_class(data_dir):
    from brainexpr.datasets import load_samples

    samples = load_samples(data_dir=data_dir)
    classed = tissue.with_tissue_class(samples, data_dir=data_dir)
    assert list(classed.columns) == [*samples.columns, "tissue_class"] and "tissue_class" not in samples
    assert set(classed["tissue_class"].unique()) == {-1, 0, 1}
    coords = samples[["corrected_mni_x", "corrected_mni_y", "corrected_mni_z"]].to_numpy()
    np.testing.assert_array_equal(classed["tissue_class"], tissue.tissue_class_at(coords, data_dir))
    assert classed["tissue_class"].value_counts().to_dict() == {1: 1654, -1: 1304, 0: 744}



def test_tissue_probabilities_at_smoothing(data_dir):
    points = np.array([
        [-12.0, 12.0, 10.0],    # head of the left caudate, grey matter
        [-28.0, -10.0, 30.0],   # corona radiata, deep white matter
        [0.0, 0.0, 150.0],      # outside the head
    ])
    raw = tissue.tissue_probabilities_at(points, data_dir=data_dir)
    np.testing.assert_array_equal(tissue.tissue_class(raw[:, 0], raw[:, 1]),
                                  tissue.tissue_class_at(points, data_dir=data_dir))
    smooth = tissue.tissue_probabilities_at(points, sigma_mm=5.0, data_dir=data_dir)
    assert smooth.shape == (3, 2) and np.all((smooth >= 0) & (smooth <= 1))
    assert smooth[1, 1] > 0.5 > smooth[1, 0]  # deep white matter stays white
    assert smooth[1, 1] < raw[1, 1]  # but the smoothing mixes in the neighbourhood
    np.testing.assert_array_equal(smooth[2], [0.0, 0.0])
