import numpy as np

from geopre.synth import textures


def test_materials_are_bundled_photographs_normalised_to_zero_mean():
    atlas = textures.materials()
    assert atlas.levels == 9  # 256 -> 1
    for k in range(len(textures.MATERIALS)):
        level0 = atlas.texels[atlas.offsets[k, 0]:atlas.offsets[k, 0] + textures.SIZE**2, 0]
        assert abs(level0.mean()) < 1e-4 and abs(level0.std() - 1.0) < 1e-3
    assert textures.photos().texels.shape[1] == 3


def test_sample_hits_texel_centres_when_sharp_and_the_mean_when_far():
    atlas = textures.materials()
    texel = 0.01
    iy, ix = np.array([0, 5, 200, 255]), np.array([0, 17, 3, 255])
    u, v = (ix + 0.5) * texel, (iy + 0.5) * texel
    near = textures.sample(atlas, np.full(4, textures.BRICK), u, v, np.full(4, texel), np.full(4, 1e-4))[:, 0]
    start = atlas.offsets[textures.BRICK, 0]
    np.testing.assert_allclose(near, atlas.texels[start + iy * textures.SIZE + ix, 0], atol=1e-5)
    # Mirrored repeat: one tile over, the texture continues reflected, without a seam.
    mirrored = textures.sample(atlas, np.full(4, textures.BRICK), 2 * textures.SIZE * texel - u, v,
                               np.full(4, texel), np.full(4, 1e-4))[:, 0]
    np.testing.assert_allclose(mirrored, near, atol=1e-5)
    far = textures.sample(atlas, np.full(4, textures.BRICK), u, v, np.full(4, texel), np.full(4, 1e3))[:, 0]
    np.testing.assert_allclose(far, 0.0, atol=1e-4)  # a pixel wider than the photo sees its mean
