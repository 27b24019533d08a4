"""The Keras post's MNIST convnet program, run on mlrepro's Keras-style API.

Copied from "Simplifying Deep Learning Programming with Keras" (2017-11-01). Changes:
- import lines: `keras.` → `mlrepro.keras.`; the post's `from keras.dataset import mnist` (a typo
  for `datasets`) fixed; `MaxPooling2D`, used but not imported in the post, added to the imports.
- one added line: `num_classes = 10`, which the post uses without defining.
Kept as written: `model.add(Conv2D(...), input_shape=(28, 28, 1))` passes input_shape to add()
instead of to the layer (real Keras raises TypeError there; mlrepro accepts it), and the
Conv2D layers have no activation (Keras's default is linear).

Run:   MLREPRO_DATA=/path/to/data python examples/keras_mnist.py
"""

# The post's program as it was written (only the changes above): no reformatting, import sorting
# or f-string rewrite, so that it stays comparable line by line with the post.
# ruff: noqa: I001, UP032
# fmt: off
from mlrepro.keras.models import Sequential
from mlrepro.keras.layers import Dense, Conv2D, MaxPooling2D, Dropout, Flatten
from mlrepro.keras.optimizers import Adadelta
from mlrepro.keras.datasets import mnist
from mlrepro.keras.utils import to_categorical

num_classes = 10  # used but not defined in the post

model = Sequential()
model.add(Conv2D(32, (5, 5), padding='same'), input_shape=(28, 28, 1))
model.add(MaxPooling2D(padding='same'))
model.add(Conv2D(64, (5, 5), padding='same'))
model.add(MaxPooling2D(padding='same'))
model.add(Flatten())
model.add(Dense(1024, activation='relu'))
model.add(Dropout(0.5))
model.add(Dense(256, activation='relu'))
model.add(Dropout(0.5))
model.add(Dense(10, activation='softmax'))

model.compile(optimizer=Adadelta(),
              loss='categorical_crossentropy',
              metrics=['accuracy'])

(x_train, y_train), (x_test, y_test) = mnist.load_data()
# Convert to values between 0. and 1.
x_train = x_train.reshape(-1, 28, 28, 1).astype('float32') / 255.
x_test = x_test.reshape(-1, 28, 28, 1).astype('float32') / 255.
y_train = to_categorical(y_train, num_classes)
y_test = to_categorical(y_test, num_classes)

model.fit(x_train, y_train, epochs=10, batch_size=50)

loss, accuracy = model.evaluate(x_test, y_test)
print('Accuracy of {:.2f}%'.format(accuracy * 100))
